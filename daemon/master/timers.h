#pragma once

// Timers: the master's clock and its delayed work (a cancel's SIGKILL after
// the grace, the end of the wait for nodes after a restart, the sweep of
// expired jobs), behind an interface so tests move time by hand
// (FakeTimers) and never sleep.
//
// Thread-safe. Callbacks run on the timers' own thread (RealTimers) or on
// the thread that advances time (FakeTimers), never with a lock of the
// Timers held; a callback may schedule more.

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace constellation::daemon::master {

class Timers {
 public:
  virtual ~Timers() = default;
  virtual absl::Time Now() = 0;
  // Runs `fn` at `when` (at once if it is past). Pending callbacks are dropped at destruction.
  virtual void At(absl::Time when, std::function<void()> fn) = 0;
  void After(absl::Duration delay, std::function<void()> fn) { At(Now() + delay, std::move(fn)); }
};

class RealTimers final : public Timers {
 public:
  RealTimers();
  ~RealTimers() override;  // drops what is pending, joins the thread
  absl::Time Now() override { return absl::Now(); }
  void At(absl::Time when, std::function<void()> fn) override;

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<absl::Time, std::function<void()>> due_;  // guarded by mu_
  bool stopping_ = false;                                 // guarded by mu_
  std::thread thread_;
};

class FakeTimers final : public Timers {
 public:
  explicit FakeTimers(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}
  absl::Time Now() override;
  void At(absl::Time when, std::function<void()> fn) override;
  // Moves the clock forward, running what falls due, in order.
  void Advance(absl::Duration by);
  size_t pending();

 private:
  std::mutex mu_;
  absl::Time now_;                                        // guarded by mu_
  std::multimap<absl::Time, std::function<void()>> due_;  // guarded by mu_
};

}  // namespace constellation::daemon::master
