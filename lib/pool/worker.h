#pragma once

// A pool's worker process and its link to the pool. The pool sends a
// TaskMessage per task and the worker answers each with a ResultMessage, one
// task at a time, until it gets a stop message (or the pool process is
// gone); then it exits 0.
//
// Ownership: the dispatcher owns each WorkerLink; destroying one drops the
// channels, not the process (a worker is stopped with a stop message).
// Threading: a WorkerLink is used by one thread at a time (the dispatcher's).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "lib/core/internal_only.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "lib/net/channel.h"
#include "lib/process/code_location.h"

namespace constellation::pool_internal {

struct TaskMessage {
  bool stop = false;  // exit instead: the pool is shutting down
  std::string runner_module;
  int64_t runner_offset = 0;
  std::string fn_module;
  int64_t fn_offset = 0;
  std::string args;  // the encoded arguments
  template <class Archive>
  void serialize(Archive& ar) {
    ar(stop, runner_module, runner_offset, fn_module, fn_offset, args);
  }
};

struct ResultMessage {
  int32_t code = 0;     // absl::StatusCode: 0, or why the task could not run
  std::string message;  // the error's message
  std::string value;    // the encoded return value
  template <class Archive>
  void serialize(Archive& ar) {
    ar(code, message, value);
  }
};

// A task message for the runner and function at these places.
TaskMessage MakeTaskMessage(const process_internal::CodeLocation& runner, const process_internal::CodeLocation& fn,
                            std::string args);

// The worker's result as what the task's Future gets.
absl::StatusOr<std::string> ToResult(ResultMessage message);

// Runs one task in this process (what the worker does; exposed for tests).
ResultMessage RunTaskMessage(const TaskMessage& task);

// One running worker process, as the pool sees it.
struct WorkerLink {
  explicit WorkerLink(const Pid& worker) : pid(worker), tasks(worker), results(worker) {}
  Pid pid;
  Sender<TaskMessage> tasks;
  Receiver<ResultMessage> results;
};

// Spawns a worker process with `resources`, waiting for room as spawn()
// does. Thread-safe.
absl::StatusOr<Pid> SpawnWorker(const Resources& resources);

}  // namespace constellation::pool_internal
