#pragma once

// FakeAlarm: an Alarm (daemon/node_grace.h) that tests fire by hand, so no
// test waits for time to pass. Thread-safe: the code under test may Set and
// Cancel from its own threads while the test waits for that (WaitPending).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <utility>

#include "daemon/node_grace.h"

namespace constellation::daemon {

class FakeAlarm final : public Alarm {
 public:
  void Set(absl::Duration after, std::function<void()> fire) override {
    std::lock_guard<std::mutex> lock(mu_);
    after_ = after;
    fire_ = std::move(fire);
    ++sets_;
    cv_.notify_all();
  }
  void Cancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    fire_ = nullptr;
    cv_.notify_all();
  }

  bool pending() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fire_ != nullptr;
  }
  absl::Duration after() const {
    std::lock_guard<std::mutex> lock(mu_);
    return after_;
  }
  int sets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sets_;
  }
  // Waits until something is set (or not); false if the failure guard ran out.
  bool WaitPending(bool want = true, std::chrono::seconds guard = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, guard, [&] { return (fire_ != nullptr) == want; });
  }
  // The time has come: runs what is set (on the caller's thread); false if nothing is.
  bool Fire() {
    std::function<void()> fire = Take();
    if (!fire) return false;
    fire();
    return true;
  }
  // What is set, to run late (a callback already under way when it was cancelled).
  std::function<void()> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(fire_, nullptr);
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  absl::Duration after_;
  std::function<void()> fire_;
  int sets_ = 0;
};

}  // namespace constellation::daemon
