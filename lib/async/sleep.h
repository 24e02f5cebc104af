#pragma once

// sleep_for / sleep_until: suspend the calling coroutine, not its thread.
//
//   co_await constellation::sleep_for(absl::Milliseconds(10));

#include "absl/time/clock.h"
#include "absl/time/time.h"
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

}  // namespace async_internal

inline async_internal::SleepWait sleep_until(absl::Time until) { return async_internal::SleepWait(until); }
inline async_internal::SleepWait sleep_for(absl::Duration duration) {
  return async_internal::SleepWait(absl::Now() + duration);
}

}  // namespace constellation
