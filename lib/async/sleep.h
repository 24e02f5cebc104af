#pragma once

// sleep_for / sleep_until: suspend the calling coroutine, not its thread;
// yield_now: let the thread's other ready coroutines run first.
//
//   co_await constellation::sleep_for(absl::Milliseconds(10));

#include <coroutine>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lib/async/executor.h"
#include "lib/async/wait.h"

namespace constellation {
namespace async_internal {

class SleepWait final : public Wait {
 public:
  explicit SleepWait(absl::Time until) : Wait(until), until_(until) {}
  ~SleepWait() { Cancel(); }
  void await_resume() const noexcept {}

 private:
  bool TryComplete() override { return absl::Now() >= until_; }
  void Subscribe(bool) override {}  // only the timer wakes it
  const absl::Time until_;
};

// Lets the executor run what else is ready, then resumes.
class Yield final : public Runnable {
 public:
  Yield() = default;
  Yield(const Yield&) = delete;
  Yield& operator=(const Yield&) = delete;
  ~Yield() {
    if (executor_ != nullptr) executor_->Unpost(this);
  }
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> waiting) {
    waiting_ = waiting;
    executor_ = &Executor::CurrentOrDie("co_await yield_now()");
    executor_->Post(this);
  }
  void await_resume() const noexcept {}

 private:
  void Run() override { waiting_.resume(); }
  Executor* executor_ = nullptr;
  std::coroutine_handle<> waiting_;
};

}  // namespace async_internal

// co_await yield_now(): lets the thread's other ready coroutines run first.
inline async_internal::Yield yield_now() { return {}; }

inline async_internal::SleepWait sleep_until(absl::Time until) { return async_internal::SleepWait(until); }
inline async_internal::SleepWait sleep_for(absl::Duration duration) {
  return async_internal::SleepWait(absl::Now() + duration);
}

}  // namespace constellation
