#pragma once

// Future<R>: the result of a task submitted to a ProcessPool
// (process_pool.h), known once a worker has run it, or why there is none.
//
//   Future<int> f = pool.submit(square, 7);
//   absl::StatusOr<int> v = f.get();          // blocks the thread
//   absl::StatusOr<int> w = co_await f;       // suspends the coroutine only
//   std::optional<absl::StatusOr<int>> now = f.try_get();
//   select({on_result(f, [](absl::StatusOr<int> v) { ... }), ...});
//
// Future<void> gives absl::Status instead of absl::StatusOr<R>. A Future is a
// cheap copyable handle on a shared state: it may be read many times, from
// any thread, and it outlives its pool (every task submitted is run or
// failed before the pool's destructor returns). A default-constructed
// Future has no task: reading it aborts.

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/async/wait.h"
#include "lib/core/codec.h"
#include "lib/net/select.h"
#include "lib/pool/future_state.h"

namespace constellation {

// What a Future<R> gives: absl::Status for R = void, else absl::StatusOr<R>.
template <class R>
using FutureResult = std::conditional_t<std::is_void_v<R>, absl::Status, absl::StatusOr<R>>;

namespace pool_internal {

// The task's encoded result (or error) as what Future<R> gives.
template <class R>
FutureResult<R> DecodeResult(const absl::StatusOr<std::string>& encoded) {
  if (!encoded.ok()) return encoded.status();
  if constexpr (std::is_void_v<R>) {
    return absl::OkStatus();
  } else {
    return decode<R>(*encoded);
  }
}

// Future<R>'s `co_await`: suspends the coroutine until the task completes.
template <class R>
class FutureWait final : public async_internal::Wait {
 public:
  explicit FutureWait(std::shared_ptr<FutureState> state) : state_(std::move(state)) {}
  ~FutureWait() { Cancel(); }
  FutureResult<R> await_resume() { return std::move(*result_); }

 private:
  bool TryComplete() override {
    std::optional<absl::StatusOr<std::string>> encoded = state_->TryGet();
    if (!encoded.has_value()) return false;
    result_.emplace(DecodeResult<R>(*encoded));
    return true;
  }
  void Subscribe(bool add) override { state_->Watch(this, add); }

  std::shared_ptr<FutureState> state_;
  std::optional<FutureResult<R>> result_;
};

// Aborts with a message: a default-constructed Future was read.
[[noreturn]] void AbortOnEmptyFuture();

}  // namespace pool_internal

template <class R>
class Future {
 public:
  Future() = default;
  explicit Future(std::shared_ptr<pool_internal::FutureState> state) : state_(std::move(state)) {}

  // Blocks the calling thread until the task has run (or failed).
  FutureResult<R> get() const { return pool_internal::DecodeResult<R>(State().Get()); }
  // The result if the task has completed; never blocks.
  std::optional<FutureResult<R>> try_get() const {
    std::optional<absl::StatusOr<std::string>> encoded = State().TryGet();
    if (!encoded.has_value()) return std::nullopt;
    return pool_internal::DecodeResult<R>(*encoded);
  }
  bool ready() const { return State().TryGet().has_value(); }
  bool valid() const { return state_ != nullptr; }

  // co_await future: the result, suspending the coroutine (not its thread)
  // until it is known. Inside block_on (lib/async/block_on.h) only.
  pool_internal::FutureWait<R> operator co_await() const { return pool_internal::FutureWait<R>(SharedState()); }

  // For on_result; users never need it.
  const std::shared_ptr<pool_internal::FutureState>& SharedState() const {
    State();  // aborts on a Future without a task
    return state_;
  }

 private:
  pool_internal::FutureState& State() const {
    if (state_ == nullptr) pool_internal::AbortOnEmptyFuture();
    return *state_;
  }

  std::shared_ptr<pool_internal::FutureState> state_;
};

// A select / select_async case (lib/net/select.h) that is ready once
// `future`'s task has completed; it then runs callback(result), `result`
// being what get() returns.
template <class R, class F>
SelectCase on_result(const Future<R>& future, F callback) {
  std::shared_ptr<pool_internal::FutureState> state = future.SharedState();
  return SelectCase([state](net::Waiter* waiter, bool add) { state->Watch(waiter, add); },
                    [state, callback]() mutable {
                      std::optional<absl::StatusOr<std::string>> encoded = state->TryGet();
                      if (!encoded.has_value()) return false;
                      callback(pool_internal::DecodeResult<R>(*encoded));
                      return true;
                    });
}

}  // namespace constellation
