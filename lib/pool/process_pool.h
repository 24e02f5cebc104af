#pragma once

// ProcessPool: runs submitted functions on a fixed number of worker
// processes, each running one task at a time, and replaces workers that die.
//
//   int square(int x) { return x * x; }
//   ...
//   ProcessPool pool(4, Resources{.mem = 200 * kMiB});
//   Future<int> f = pool.submit(square, 7);
//   absl::StatusOr<int> v = f.get();     // or co_await f in a coroutine
//
// A task is a plain function or a captureless lambda R(Args...), run in a
// worker process (another process of the same binary, started with spawn()):
// captures cannot cross processes, so pass what it needs as arguments. The
// arguments and the result are encoded with the codec (lib/core/codec.h).
// Whichever worker is idle takes the oldest queued task; results come back
// in any order, each through its Future (future.h).
//
// Failures: a worker that dies while running a task (a signal, running out
// of memory, exit()) is replaced by a fresh one and the task runs again, up
// to PoolOptions::max_attempts times in all; after that its Future fails
// with kUnavailable naming the last worker's fate ("process 3fecd01 was
// killed by signal 9 (SIGKILL)"). A task that cannot start (a worker cannot
// be spawned) fails with the spawn's error. A task that never returns holds
// its worker for good.
//
// Destruction: the pool stops taking work, lets every queued and running
// task finish (so every Future gets its result), then stops the workers and
// waits until each has exited: no process of the pool outlives it. Futures
// may outlive the pool.
//
// Threading: submit() from any thread. The pool runs one dispatcher thread
// of its own (its workers' channels are awaited as coroutines there), which
// starts the workers: they are spawned in the background as spawn() does,
// waiting for room. Requires init().

#include <cstddef>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "lib/core/codec.h"
#include "lib/core/resources.h"
#include "lib/pool/future.h"
#include "lib/pool/pool_options.h"
#include "lib/pool/task_runner.h"

namespace constellation {

namespace pool_internal {

class PoolCore;

// The function pointer a plain function or captureless lambda decays to.
template <class F>
concept FunctionPointerLike = requires(F f) {
  {+f};
  requires std::is_pointer_v<decltype(+f)> && std::is_function_v<std::remove_pointer_t<decltype(+f)>>;
};

template <class F>
struct SubmitResult {
  using type = void;
};
template <FunctionPointerLike F>
struct SubmitResult<F> {
  using type = std::decay_t<typename TaskSignature<decltype(+std::declval<F>())>::Result>;
};

}  // namespace pool_internal

class ProcessPool {
 public:
  // Starts `workers` worker processes (at least 1), each with `per_worker`.
  explicit ProcessPool(size_t workers, Resources per_worker = Resources(), PoolOptions options = PoolOptions());
  // See the header comment: runs what was submitted, then stops the workers.
  ~ProcessPool();
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  // Queues fn(args...) to run on a worker; its Future gives the result.
  template <class F, class... Args>
  Future<typename pool_internal::SubmitResult<std::decay_t<F>>::type> submit(F&& fn, Args&&... args);

  size_t size() const { return workers_; }

 private:
  // What submit() needs of the pool's insides, out of line.
  std::shared_ptr<pool_internal::FutureState> Submit(pool_internal::Runner runner, pool_internal::GenericFn fn,
                                                     std::string args);

  size_t workers_;
  std::unique_ptr<pool_internal::PoolCore> core_;
};

template <class F, class... Args>
Future<typename pool_internal::SubmitResult<std::decay_t<F>>::type> ProcessPool::submit(F&& fn, Args&&... args) {
  using Result = typename pool_internal::SubmitResult<std::decay_t<F>>::type;
  static_assert(pool_internal::FunctionPointerLike<std::decay_t<F>>,
                "ProcessPool::submit() runs a plain function or a captureless lambda in a worker process: a "
                "lambda's captures cannot cross processes, so pass them as submit() arguments instead");
  if constexpr (pool_internal::FunctionPointerLike<std::decay_t<F>>) {
    using Fp = decltype(+fn);
    using Signature = pool_internal::TaskSignature<Fp>;
    static_assert(Signature::kArity == sizeof...(Args),
                  "ProcessPool::submit() got a different number of arguments than the function takes");
    if constexpr (Signature::kArity == sizeof...(Args)) {
      static_assert(std::is_void_v<Result> || std::is_default_constructible_v<std::decay_t<Result>>,
                    "a pool task's result crosses processes: it must be default-constructible and encodable");
      typename Signature::Stored values(std::forward<Args>(args)...);
      return Future<Result>(
          Submit(&pool_internal::RunTask<Fp>, reinterpret_cast<pool_internal::GenericFn>(+fn), encode(values)));
    }
  }
  return Future<Result>();
}

}  // namespace constellation
