#include "lib/pool/task_queue.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"

namespace constellation::pool_internal {

TaskQueue::~TaskQueue() {
  net::MutexLock lock(&mu_);
  for (PendingTask& task : tasks_) {
    task.future->Complete(absl::CancelledError("the process pool was destroyed before the task ran"));
  }
}

void TaskQueue::Push(PendingTask task) {
  net::MutexLock lock(&mu_);
  if (closed_) {
    std::fprintf(stderr, "constellation: ProcessPool::submit() called while the pool is being destroyed\n");
    std::abort();
  }
  tasks_.push_back(std::move(task));
  // Every idle worker tries; one gets it, the others wait on. (Fired under
  // the lock: a waiter removing itself waits for this to end.)
  for (net::Waiter* waiter : waiters_) waiter->Fire();
}

void TaskQueue::Close() {
  net::MutexLock lock(&mu_);
  closed_ = true;
  for (net::Waiter* waiter : waiters_) waiter->Fire();
}

bool TaskQueue::TryPop(std::optional<PendingTask>* task) {
  net::MutexLock lock(&mu_);
  if (tasks_.empty()) return closed_;
  task->emplace(std::move(tasks_.front()));
  tasks_.pop_front();
  return true;
}

void TaskQueue::Watch(net::Waiter* waiter, bool add) {
  net::MutexLock lock(&mu_);
  if (add) {
    waiters_.push_back(waiter);
  } else {
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
  }
}

}  // namespace constellation::pool_internal
