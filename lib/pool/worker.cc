#include "lib/pool/worker.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/pool/task_runner.h"
#include "lib/process/spawn.h"

namespace constellation::pool_internal {

using process_internal::CodeLocation;

namespace {

// The worker process's body.
void WorkerMain(Pid pool) {
  Receiver<TaskMessage> tasks(pool);
  Sender<ResultMessage> results(pool);
  for (;;) {
    absl::StatusOr<TaskMessage> task = tasks.recv();
    if (!task.ok() || task->stop) return;  // the pool is gone or done with us
    if (!results.send(RunTaskMessage(*task)).ok()) return;
  }
}

ResultMessage Failure(const absl::Status& status) {
  ResultMessage result;
  result.code = static_cast<int32_t>(status.code());
  result.message = std::string(status.message());
  return result;
}

}  // namespace

TaskMessage MakeTaskMessage(const CodeLocation& runner, const CodeLocation& fn, std::string args) {
  TaskMessage task;
  task.runner_module = runner.module;
  task.runner_offset = runner.offset;
  task.fn_module = fn.module;
  task.fn_offset = fn.offset;
  task.args = std::move(args);
  return task;
}

absl::StatusOr<std::string> ToResult(ResultMessage message) {
  if (message.code == 0) return std::move(message.value);
  return absl::Status(static_cast<absl::StatusCode>(message.code), message.message);
}

ResultMessage RunTaskMessage(const TaskMessage& task) {
  absl::StatusOr<const void*> runner =
      process_internal::ResolveCode(CodeLocation{task.runner_module, task.runner_offset});
  if (!runner.ok()) return Failure(runner.status());
  absl::StatusOr<const void*> fn = process_internal::ResolveCode(CodeLocation{task.fn_module, task.fn_offset});
  if (!fn.ok()) return Failure(fn.status());
  ResultMessage result;
  absl::Status status = reinterpret_cast<Runner>(const_cast<void*>(*runner))(
      reinterpret_cast<GenericFn>(const_cast<void*>(*fn)), task.args, &result.value);
  if (!status.ok()) return Failure(status);
  return result;
}

absl::StatusOr<Pid> SpawnWorker(const Resources& resources) { return spawn(resources, &WorkerMain); }

}  // namespace constellation::pool_internal
