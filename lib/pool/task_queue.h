#pragma once

// TaskQueue: the tasks submitted to a pool and not yet handed to a worker,
// and NextTask, the awaitable with which an idle worker's coroutine takes the
// next one (so whichever worker is idle gets it). Closing the queue lets
// the tasks in it be taken still, then makes NextTask answer "none".
//
// Ownership: the pool owns the queue; the queue owns its tasks until taken.
// A task still queued when the queue is destroyed fails ("never run").
// Threading: Push and Close from any thread; NextTask on the dispatcher's
// executor (lib/async).

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "lib/async/wait.h"
#include "lib/core/internal_only.h"
#include "lib/net/mutex.h"
#include "lib/net/waiter.h"
#include "lib/pool/future_state.h"
#include "lib/pool/worker.h"

namespace constellation::pool_internal {

struct PendingTask {
  TaskMessage message;
  std::shared_ptr<FutureState> future;
  int attempts = 0;  // workers it was handed to so far
};

class TaskQueue {
 public:
  TaskQueue() = default;
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;
  ~TaskQueue();

  // Queues a task and wakes the idle workers. Aborts after Close().
  void Push(PendingTask task) ABSL_LOCKS_EXCLUDED(mu_);
  // No more Push; NextTask answers nullopt once the queue is empty.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  // co_await queue.NextTask(): the oldest task, or nullopt when the queue is
  // closed and empty.
  class NextTaskWait;
  NextTaskWait NextTask();

 private:
  // The oldest task into *task; false if there is none and the queue is open.
  bool TryPop(std::optional<PendingTask>* task) ABSL_LOCKS_EXCLUDED(mu_);
  void Watch(net::Waiter* waiter, bool add) ABSL_LOCKS_EXCLUDED(mu_);

  net::Mutex mu_;
  std::deque<PendingTask> tasks_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<net::Waiter*> waiters_ ABSL_GUARDED_BY(mu_);  // the idle workers' coroutines
};

class TaskQueue::NextTaskWait final : public async_internal::Wait {
 public:
  explicit NextTaskWait(TaskQueue* queue) : queue_(queue) {}
  ~NextTaskWait() { Cancel(); }
  std::optional<PendingTask> await_resume() { return std::move(task_); }

 private:
  bool TryComplete() override { return queue_->TryPop(&task_); }
  void Subscribe(bool add) override { queue_->Watch(this, add); }

  TaskQueue* queue_;
  std::optional<PendingTask> task_;
};

inline TaskQueue::NextTaskWait TaskQueue::NextTask() { return NextTaskWait(this); }

}  // namespace constellation::pool_internal
