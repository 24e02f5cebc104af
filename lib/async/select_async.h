#pragma once

// select_async: select (lib/net/select.h) for coroutines. Waits on several
// cases (on_recv, on_send, a monitor's on_down) and runs exactly one that is
// ready, then its callback; suspends the coroutine, not the thread.
//
//   absl::StatusOr<size_t> which = co_await select_async(
//       on_recv(numbers, [&](absl::StatusOr<int> v) { ... }),
//       on_send(out, std::string("hi"), [&](absl::Status s) { ... }),
//       absl::Milliseconds(100));   // the timeout is optional, and last
//
// (A vector of cases works too. GCC 12 cannot compile a braced list of
// cases inside a coroutine, hence the argument list.)
//
// The index of the case that ran, or kDeadlineExceeded when none became
// ready in time (no callback ran). Ready cases are tried from a rotating
// position, so a busy case cannot starve the others. The channels must
// outlive the wait; the callbacks run on the coroutine's thread.

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/async/wait.h"
#include "lib/net/select.h"

namespace constellation {
namespace async_internal {

class SelectWait final : public Wait {
 public:
  SelectWait(std::vector<SelectCase> cases, absl::Time deadline);
  ~SelectWait() { Cancel(); }
  absl::StatusOr<size_t> await_resume() { return std::move(*result_); }

 private:
  bool TryComplete() override;
  void Subscribe(bool add) override;
  void TimedOut() override;

  std::vector<SelectCase> cases_;
  size_t start_ = 0;  // where this select tries first
  std::optional<absl::StatusOr<size_t>> result_;
};

}  // namespace async_internal

async_internal::SelectWait select_async(std::vector<SelectCase> cases,
                                        std::optional<absl::Duration> timeout = std::nullopt);

namespace async_internal {
inline void AddSelectArg(std::vector<SelectCase>* cases, std::optional<absl::Duration>*, SelectCase c) {
  cases->push_back(std::move(c));
}
inline void AddSelectArg(std::vector<SelectCase>*, std::optional<absl::Duration>* timeout, absl::Duration d) {
  *timeout = d;
}
}  // namespace async_internal

template <class... More>
async_internal::SelectWait select_async(SelectCase first, More&&... more) {
  std::vector<SelectCase> cases;
  cases.reserve(1 + sizeof...(More));
  cases.push_back(std::move(first));
  std::optional<absl::Duration> timeout;
  (async_internal::AddSelectArg(&cases, &timeout, std::forward<More>(more)), ...);
  return select_async(std::move(cases), timeout);
}

}  // namespace constellation
