#pragma once

// Waiter: a one-shot wake-up a thread blocked in select() registers with every
// Peer it waits on. Fire() from any thread; Wait/Reset by the owner thread.

#include <condition_variable>
#include <mutex>

#include "absl/time/time.h"

namespace constellation::net {

// Waits on `cv` with `lock` until pred() or `deadline`; returns pred().
template <class Pred>
bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, absl::Time deadline, Pred pred) {
  if (deadline == absl::InfiniteFuture()) {
    cv.wait(lock, pred);
    return true;
  }
  return cv.wait_until(lock, absl::ToChronoTime(deadline), pred);
}

class Waiter {
 public:
  void Fire() {
    std::lock_guard<std::mutex> lock(mu_);
    fired_ = true;
    cv_.notify_all();  // under the lock: the waiter may destroy *this once it sees fired_
  }
  // True if fired before `deadline`.
  bool WaitUntil(absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return net::WaitUntil(cv_, lock, deadline, [this] { return fired_; });
  }
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    fired_ = false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool fired_ = false;
};

}  // namespace constellation::net
