#include "lib/async/wait.h"

#include <cstdio>
#include <cstdlib>

namespace constellation::async_internal {

void Wait::await_suspend(std::coroutine_handle<> waiting) {
  executor_ = &Executor::CurrentOrDie("co_await on a channel, a timer or a monitor");
  waiting_ = waiting;
  if (deadline_ != absl::InfiniteFuture()) {
    timer_ = executor_->AddTimer(deadline_, &timer_run_);
    timer_set_ = true;
  }
  executor_->AddSuspended(this);
}

void Wait::Arm() {
  Subscribe(true);
  subscribed_ = true;
  // What changed since await_ready's try did not fire it: try again (Run).
  executor_->Post(this);
}

void Wait::Park() {
  // Nothing else can need this thread: block in the operation itself. A fire
  // from before the unsubscribe only means the operation will not block long.
  if (subscribed_) Subscribe(false);
  subscribed_ = false;
  executor_->Unpost(this);
  if (timer_set_) executor_->CancelTimer(timer_);
  timer_set_ = false;
  CompleteBlocking(deadline_);
  Finish();
  waiting_.resume();
}

void Wait::Cancel() {
  if (subscribed_) Subscribe(false);
  subscribed_ = false;
  if (executor_ != nullptr) executor_->RemoveSuspended(this);
  if (timer_set_) executor_->CancelTimer(timer_);
  timer_set_ = false;
  // After unsubscribing nothing posts it again; take out a post in flight.
  if (executor_ != nullptr) executor_->Unpost(this);
}

Wait::~Wait() {
  if (subscribed_ || timer_set_) {
    std::fprintf(stderr, "constellation: a Wait's subclass did not call Cancel() in its destructor\n");
    std::abort();
  }
}

void Wait::Run() {
  if (done_ || !TryComplete()) return;  // a late or spurious fire: still waiting
  Finish();
  waiting_.resume();  // may destroy *this: nothing after
}

void Wait::OnTimer() {
  timer_set_ = false;  // the executor has dropped it
  if (done_) return;
  TimedOut();
  Finish();
  waiting_.resume();
}

void Wait::Finish() {
  done_ = true;
  executor_->RemoveSuspended(this);
  if (subscribed_) Subscribe(false);
  subscribed_ = false;
  if (timer_set_) executor_->CancelTimer(timer_);
  timer_set_ = false;
}

}  // namespace constellation::async_internal
