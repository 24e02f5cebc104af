#pragma once

// PoolCore: a ProcessPool's insides (process_pool.h). A dispatcher thread
// runs one coroutine per worker slot on its executor (lib/async): each takes
// the next queued task when its worker is idle, sends it, awaits the reply,
// and replaces its worker when the reply is the worker's death (retrying the
// task up to the bound). No thread per worker, none per task.
//
// Ownership: owns the queue, the dispatcher thread and the workers' links.
// Threading: Submit from any thread; the rest on the dispatcher thread.

#include <cstddef>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "lib/async/task.h"
#include "lib/core/internal_only.h"
#include "lib/core/resources.h"
#include "lib/pool/pool_options.h"
#include "lib/pool/task_queue.h"
#include "lib/pool/worker.h"

namespace constellation::pool_internal {

class PoolCore {
 public:
  // Starts the dispatcher thread, which spawns the workers.
  PoolCore(size_t workers, const Resources& per_worker, const PoolOptions& options);
  // Closes the queue and waits for the dispatcher: every task has completed
  // and every worker has exited.
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  void Submit(PendingTask task) { queue_.Push(std::move(task)); }

 private:
  // One worker slot, from its first worker's start to its last one's exit.
  Task<void> RunSlot();
  // Runs `task` on *worker (starting one if null), replacing dead workers,
  // until it succeeds, fails, or reaches the attempt bound.
  Task<void> RunTask(std::unique_ptr<WorkerLink>* worker, PendingTask* task);
  // Starts a worker. The spawn runs on a short-lived thread of its own, so
  // that one waiting for room does not stop the dispatcher serving the others.
  Task<absl::StatusOr<std::unique_ptr<WorkerLink>>> StartWorker();
  // Asks a worker to exit and waits until it has.
  static Task<void> StopWorker(WorkerLink* worker);

  const Resources per_worker_;
  const PoolOptions options_;
  TaskQueue queue_;
  std::thread dispatcher_;
};

}  // namespace constellation::pool_internal
