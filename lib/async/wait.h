#pragma once

// Wait: the awaitable behind every suspending operation (a channel's
// async_recv and async_send, select_async, sleep_for, a monitor's
// async_wait). A subclass says how to try the operation without waiting
// (TryComplete) and how to be told it may have become possible (Subscribe: it
// registers the Wait, a net::Waiter, with a Peer or a monitor). Suspended, a
// Wait costs nothing until it is fired: Fire() posts it to the coroutine's
// executor, whose thread tries again and resumes the coroutine once it
// succeeds, or once the deadline passes.
//
// Lifetime: a Wait lives in its coroutine's frame (the temporary of a
// co_await); destroying the frame (destroying the Task: cancellation) runs
// the subclass's destructor, which must call Cancel(): it unsubscribes,
// unposts and cancels the timer, so nothing fires into freed memory. (Not
// ~Wait: Subscribe is the subclass's, gone by then.) Threading: the coroutine's thread, except Fire.

#include <coroutine>

#include "absl/time/time.h"
#include "lib/async/executor.h"
#include "lib/net/waiter.h"

namespace constellation::async_internal {

class Wait : public Parkable, public net::Waiter {
 public:
  Wait(const Wait&) = delete;
  Wait& operator=(const Wait&) = delete;

  bool await_ready() { return done_ = TryComplete(); }
  // Suspends; the executor parks in it or arms it later (see Parkable).
  void await_suspend(std::coroutine_handle<> waiting);

 protected:
  explicit Wait(absl::Time deadline = absl::InfiniteFuture()) : deadline_(deadline) {}
  ~Wait();  // aborts if the subclass did not Cancel()
  // Every final subclass's destructor calls it first.
  void Cancel();

  // Performs the operation if it need not wait, keeping its result; false if
  // it would have to wait.
  virtual bool TryComplete() = 0;
  // Registers (add) or unregisters this Wait with what fires it.
  virtual void Subscribe(bool add) = 0;
  // The deadline passed first: keep the timeout's result.
  virtual void TimedOut() {}
  // Performs the operation, blocking the thread until it can or until
  // `deadline` (then the timeout's result); for a subclass whose Blocks()
  // is true. See Parkable.
  virtual bool Blocks() const { return false; }
  virtual void CompleteBlocking(absl::Time deadline) {}

 private:
  // Fired (any thread, the firer's lock held): try again on the executor.
  void Fire() override { executor_->Post(this); }
  void Run() override;
  bool CanPark() const override { return Blocks(); }
  size_t OwnTimers() const override { return timer_set_ ? 1 : 0; }
  bool Armed() const override { return subscribed_; }
  void Arm() override;
  void Park() override;
  void OnTimer();
  void Finish();

  struct TimerRun final : Runnable {
    explicit TimerRun(Wait* w) : wait(w) {}
    void Run() override { wait->OnTimer(); }
    Wait* wait;
  };

  const absl::Time deadline_;
  Executor* executor_ = nullptr;
  std::coroutine_handle<> waiting_;
  TimerRun timer_run_{this};
  Executor::TimerId timer_{};
  bool subscribed_ = false;
  bool timer_set_ = false;
  bool done_ = false;
};

}  // namespace constellation::async_internal
