#pragma once

// FutureState: what a process pool's Future<R> (future.h) shares with the
// pool: the task's encoded result or error, once it is known, and the
// waiters to fire then (a coroutine's co_await, a select case). Not
// templated, so the pool's insides handle every task alike; Future<R>
// decodes.
//
// Ownership: shared (std::shared_ptr) by the Futures and the pool's queue, so
// either may outlive the other. Threading: every method from any thread.

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "lib/net/mutex.h"
#include "lib/net/waiter.h"

namespace constellation::pool_internal {

class FutureState {
 public:
  FutureState() = default;
  FutureState(const FutureState&) = delete;
  FutureState& operator=(const FutureState&) = delete;

  // Sets the result (the task's encoded return value, or why there is none)
  // and fires every waiter. Only the first call counts; later ones are
  // ignored (the pool fails leftovers on its way out, see TaskQueue).
  void Complete(absl::StatusOr<std::string> result) ABSL_LOCKS_EXCLUDED(mu_);

  // The result if it is known. (A copy: a Future may be read many times.)
  std::optional<absl::StatusOr<std::string>> TryGet() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks the calling thread until the result is known.
  absl::StatusOr<std::string> Get() const ABSL_LOCKS_EXCLUDED(mu_);

  // Registers (add) or unregisters `waiter`, fired once on completion (at
  // once if already complete; with the state's lock held, see net::Waiter).
  // After an unregistering call returns, no Fire is in progress.
  void Watch(net::Waiter* waiter, bool add) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable net::Mutex mu_;
  mutable net::CondVar done_;
  std::optional<absl::StatusOr<std::string>> result_ ABSL_GUARDED_BY(mu_);
  std::vector<net::Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace constellation::pool_internal
