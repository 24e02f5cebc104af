#pragma once

// Waiter: what a Peer calls when a send or receive it was idle on may go on
// (a frame, room, an error). select() registers a BlockingWaiter, a thread's
// one-shot wake-up, with every Peer it waits on; the coroutine executor
// (lib/async) registers its own, which makes the waiting coroutine runnable.

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "lib/net/mutex.h"

namespace constellation::net {

// Waits on `cv` with `lock` until pred() or `deadline`; returns pred(). (For
// the std::mutex users; Mutex's CondVar has WaitUntil.)
template <class Pred>
bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, absl::Time deadline, Pred pred) {
  if (deadline == absl::InfiniteFuture()) {
    cv.wait(lock, pred);
    return true;
  }
  return cv.wait_until(lock, absl::ToChronoTime(deadline), pred);
}

// Fire() is called from any thread with the Peer's queue lock held, so it must
// be short and must not call back into the Peer; once RemoveXWaiter has
// returned, no Fire is in progress and the waiter may be destroyed.
class Waiter {
 public:
  virtual void Fire() = 0;

 protected:
  ~Waiter() = default;
};

// A thread's one-shot wake-up. Fire() from any thread; Wait/Reset by the owner thread.
class BlockingWaiter final : public Waiter {
 public:
  void Fire() override {
    MutexLock lock(&mu_);
    fired_ = true;
    cv_.NotifyAll();  // under the lock: the waiter may destroy *this once it sees fired_
  }
  // True if fired before `deadline`.
  bool WaitUntil(absl::Time deadline) {
    MutexLock lock(&mu_);
    while (!fired_ && cv_.WaitUntil(&mu_, deadline)) {
    }
    return fired_;
  }
  void Reset() {
    MutexLock lock(&mu_);
    fired_ = false;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace constellation::net
