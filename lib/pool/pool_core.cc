#include "lib/pool/pool_core.h"

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/async/block_on.h"
#include "lib/async/when.h"
#include "lib/core/codec.h"
#include "lib/pool/future.h"

namespace constellation::pool_internal {

PoolCore::PoolCore(size_t workers, const Resources& per_worker, const PoolOptions& options)
    : per_worker_(per_worker), options_(options) {
  if (workers == 0 || options.max_attempts < 1) {
    std::fprintf(stderr, "constellation: a ProcessPool needs at least 1 worker and PoolOptions::max_attempts >= 1\n");
    std::abort();
  }
  dispatcher_ = std::thread([this, workers] {
    std::vector<Task<void>> slots;
    for (size_t i = 0; i < workers; ++i) slots.push_back(RunSlot());
    block_on(when_all(std::move(slots)));
  });
}

PoolCore::~PoolCore() {
  queue_.Close();
  dispatcher_.join();
}

Task<void> PoolCore::RunSlot() {
  std::unique_ptr<WorkerLink> worker;
  absl::StatusOr<std::unique_ptr<WorkerLink>> started = co_await StartWorker();
  if (started.ok()) worker = std::move(*started);  // otherwise RunTask tries again
  for (;;) {
    std::optional<PendingTask> task = co_await queue_.NextTask();
    if (!task.has_value()) break;  // closed and drained
    co_await RunTask(&worker, &*task);
  }
  if (worker != nullptr) co_await StopWorker(worker.get());
}

Task<void> PoolCore::RunTask(std::unique_ptr<WorkerLink>* worker, PendingTask* task) {
  for (;;) {
    if (*worker == nullptr) {
      absl::StatusOr<std::unique_ptr<WorkerLink>> started = co_await StartWorker();
      if (!started.ok()) {
        task->future->Complete(
            absl::Status(started.status().code(),
                         absl::StrCat("process pool: could not start a worker: ", started.status().message())));
        co_return;
      }
      *worker = std::move(*started);
    }
    ++task->attempts;
    absl::Status died = co_await (*worker)->tasks.async_send(task->message);
    if (died.ok()) {
      absl::StatusOr<ResultMessage> reply = co_await (*worker)->results.async_recv();
      if (reply.ok()) {
        task->future->Complete(ToResult(*std::move(reply)));
        co_return;
      }
      died = reply.status();
    }
    // The worker is gone; the error says how ("process 3fecd01 was killed by signal 9 ...").
    worker->reset();
    if (task->attempts >= options_.max_attempts) {
      task->future->Complete(absl::UnavailableError(
          absl::StrCat("process pool: the task's worker died ", task->attempts,
                       task->attempts == 1 ? " time" : " times", "; the last: ", died.message())));
      // Replaced at once all the same, so the pool keeps its size (a
      // failure here is retried with the next task).
      absl::StatusOr<std::unique_ptr<WorkerLink>> started = co_await StartWorker();
      if (started.ok()) *worker = std::move(*started);
      co_return;
    }
  }
}

Task<absl::StatusOr<std::unique_ptr<WorkerLink>>> PoolCore::StartWorker() {
  auto spawned = std::make_shared<FutureState>();
  std::thread spawner([spawned, resources = per_worker_] {
    absl::StatusOr<Pid> pid = SpawnWorker(resources);
    spawned->Complete(pid.ok() ? absl::StatusOr<std::string>(encode(*pid)) : absl::StatusOr<std::string>(pid.status()));
  });
  absl::StatusOr<Pid> pid = co_await Future<Pid>(spawned);
  spawner.join();  // it has completed `spawned`: returning at most
  if (!pid.ok()) co_return pid.status();
  co_return std::make_unique<WorkerLink>(*pid);
}

Task<void> PoolCore::StopWorker(WorkerLink* worker) {
  TaskMessage stop;
  stop.stop = true;
  absl::Status sent = co_await worker->tasks.async_send(stop);
  if (!sent.ok()) co_return;  // already gone
  // Its exit ends the channel: recv fails once the process is gone.
  for (;;) {
    absl::StatusOr<ResultMessage> reply = co_await worker->results.async_recv();
    if (!reply.ok()) break;
  }
}

}  // namespace constellation::pool_internal
