#pragma once

// Waiter: a one-shot wake-up a thread blocked in select() registers with every
// Peer it waits on. Fire() from any thread; Wait/Reset by the owner thread.

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

class Waiter {
 public:
  void Fire() {
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
