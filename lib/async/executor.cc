#include "lib/async/executor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace constellation::async_internal {
namespace {

thread_local Executor* t_current = nullptr;

}  // namespace

Executor::~Executor() {
  bool idle;
  {
    net::MutexLock lock(&mu_);
    idle = ready_.empty() && timers_.empty();
  }
  if (!idle) {
    std::fprintf(stderr, "constellation: a coroutine's executor ended with waits still registered\n");
    std::abort();
  }
}

Executor* Executor::Current() { return t_current; }

Executor& Executor::CurrentOrDie(const char* what) {
  if (t_current == nullptr) {
    std::fprintf(stderr,
                 "constellation: %s outside a running coroutine: run the coroutine with block_on() (or co_await "
                 "it from one)\n",
                 what);
    std::abort();
  }
  return *t_current;
}

Executor::Scope::Scope(Executor* executor) : previous_(t_current) { t_current = executor; }

Executor::Scope::~Scope() { t_current = previous_; }

void Executor::Post(Runnable* r) {
  bool wake;
  {
    net::MutexLock lock(&mu_);
    if (r->queued_) return;
    r->queued_ = true;
    ready_.push_back(r);
    wake = sleeping_;
  }
  // After unlocking, so the owner does not wake into a held lock. The executor
  // is still alive: a firer is inside the Peer's lock, which the wait's
  // unsubscribing (before its executor can end) takes.
  if (wake) cv_.NotifyAll();  // one thread sleeps here at most: the owner
}

void Executor::Unpost(Runnable* r) {
  net::MutexLock lock(&mu_);
  if (!r->queued_) return;
  r->queued_ = false;
  ready_.erase(std::find(ready_.begin(), ready_.end(), r));
}

Executor::TimerId Executor::AddTimer(absl::Time when, Runnable* r) { return timers_.emplace(when, r); }

void Executor::CancelTimer(TimerId id) { timers_.erase(id); }

Runnable* Executor::PopReady() {
  net::MutexLock lock(&mu_);
  if (ready_.empty()) return nullptr;
  Runnable* r = ready_.front();
  ready_.pop_front();
  r->queued_ = false;
  return r;
}

Runnable* Executor::PopDueTimer(absl::Time now) {
  if (timers_.empty() || timers_.begin()->first > now) return nullptr;
  Runnable* r = timers_.begin()->second;
  timers_.erase(timers_.begin());
  return r;
}

void Executor::AddSuspended(Parkable* p) {
  p->next_ = suspended_;
  p->prev_ = nullptr;
  if (suspended_ != nullptr) suspended_->prev_ = p;
  suspended_ = p;
  p->linked_ = true;
  ++suspended_count_;
}

void Executor::RemoveSuspended(Parkable* p) {
  if (!p->linked_) return;
  if (p->prev_ != nullptr) p->prev_->next_ = p->next_;
  if (p->next_ != nullptr) p->next_->prev_ = p->prev_;
  if (suspended_ == p) suspended_ = p->next_;
  p->linked_ = false;
  --suspended_count_;
}

void Executor::RunOnce() {
  if (suspended_count_ == 1 && timers_.size() == suspended_->OwnTimers() && suspended_->CanPark()) {
    bool idle;
    {
      net::MutexLock lock(&mu_);
      idle = ready_.empty();
    }
    if (idle) return suspended_->Park();
  }
  for (Parkable* p = suspended_; p != nullptr && !p->Armed(); p = p->next_) p->Arm();
  {
    const absl::Time next = timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first;
    net::MutexLock lock(&mu_);
    sleeping_ = true;
    while (ready_.empty() && cv_.WaitUntil(&mu_, next)) {
    }
    sleeping_ = false;
  }
  // One at a time, never from a snapshot: running one may destroy another
  // (a when_any's losers), which then takes itself out of the queue.
  const absl::Time now = absl::Now();
  while (Runnable* r = PopDueTimer(now)) r->Run();
  while (Runnable* r = PopReady()) r->Run();
}

}  // namespace constellation::async_internal
