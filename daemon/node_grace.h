#pragma once

// What a node daemon does with its processes while it has no master.
//
// MasterGrace: when the master's Attach stream ends, the node keeps its
// processes for the grace (--master-grace) so that a restarted master can
// take them back; a new Attach within the grace cancels the kill; past it,
// `expire` runs (NodeService kills every process and gives up the spawns
// waiting for a master). A grace of 0 expires at once, in Detached().
//
// Alarm: the one-shot timer it waits with, an interface so that tests fire
// it by hand (no sleeps). ThreadAlarm is the real one: one thread of its own
// that waits on a condition variable until the deadline (no polling).
//
// Threading: MasterGrace's methods may be called from any thread (not the
// destructor from `expire`); `expire` runs with its lock held (so an Attach cannot slip in between the decision
// and the kill), on the alarm's thread or in Detached(), and must not call
// back into it. Alarm implementations: Set and Cancel from any thread;
// the destructor waits for a callback that is running.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace constellation::daemon {

class Alarm {
 public:
  virtual ~Alarm() = default;
  // Runs `fire` once `after` has passed, unless Set again or Cancel()ed first.
  virtual void Set(absl::Duration after, std::function<void()> fire) = 0;
  // The callback set last will not start (one already running may finish).
  virtual void Cancel() = 0;
};

class ThreadAlarm final : public Alarm {
 public:
  ThreadAlarm();
  ~ThreadAlarm() override;
  void Set(absl::Duration after, std::function<void()> fire) override;
  void Cancel() override;

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> fire_ ABSL_GUARDED_BY(mu_);  // empty: nothing set
  std::chrono::steady_clock::time_point deadline_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class MasterGrace {
 public:
  // Owns `alarm` (used for nothing else).
  MasterGrace(absl::Duration grace, std::unique_ptr<Alarm> alarm, std::function<void()> expire);
  // Destroys the alarm first: a pending expiry never runs, a running one
  // finishes before this returns.
  ~MasterGrace();

  absl::Duration grace() const { return grace_; }

  // A master is attached: a pending expiry is cancelled.
  void Attached();
  // The master's stream ended: expire after the grace unless it comes back.
  // `leaving`: this node is draining and has left the master on purpose, so
  // the log says so instead of warning that the master is gone.
  void Detached(bool leaving = false);
  // Whether the grace ran out since the last Attached() (for tests and logs).
  bool expired() const;

 private:
  void Expire(uint64_t epoch);

  const absl::Duration grace_;
  std::unique_ptr<Alarm> alarm_;
  const std::function<void()> expire_;
  mutable std::mutex mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;  // changes with every Attached/Detached
  bool attached_ ABSL_GUARDED_BY(mu_) = false;
  bool expired_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace constellation::daemon
