#pragma once

// LocalSpawner: local mode's answer to spawn() and try_spawn(), run by the
// bridge. The machine is a one-node cluster (scheduler::Scheduler with one
// node): try_spawn fails at once with ResourceExhausted when the request does
// not fit what is left, spawn waits in FIFO order until exits free room, and
// the root's init() resources count like any other process's. A spawn() that
// could only be served by an exit fails (ResourceExhausted) once every
// process holding room is itself waiting in spawn() (the oldest such request
// first; the others may fit then). A process whose other threads could still
// end it counts as waiting too: the rule is about the common case of one
// thread blocked in spawn(). Granted
// processes are started by a Launcher, so the bridge prints a child's spawn
// line the moment it exists.
//
// Not thread-safe: the bridge's one thread calls everything. Free of I/O
// (the Launcher does it), so tests drive it with a fake launcher.

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/core/internal_only.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "proto/local.pb.h"
#include "scheduler/scheduler.h"

namespace constellation::internal {

class LocalSpawner {
 public:
  struct Launched {
    Pid pid;
    pid_t monitor_os_pid = 0;
  };
  // Starts a granted request as a child of `parent`, given `resources`.
  using Launcher =
      std::function<absl::StatusOr<Launched>(const Pid& parent, const Resources& resources, const pb::SpawnRequest&)>;

  // What became of one request: `reply` goes to `requester`; when `launched`
  // is set, the caller announces the child (its spawn line) before replying.
  struct Outcome {
    Pid requester;
    pb::SpawnReply reply;
    std::optional<Launched> launched;
    Resources resources;
  };

  LocalSpawner(Resources capacity, Launcher launcher);

  // Accounts the root process. ResourceExhausted, naming both, when its
  // init() asks for more than the capacity.
  absl::Status AddRoot(const Pid& root, const Resources& resources);

  // A spawn request from `requester` (its `parent` field is ignored: a
  // process spawns as itself). Outcomes come out of TakeOutcomes().
  void Request(const Pid& requester, const pb::SpawnRequest& request);

  // `pid` exited: frees its room, withdraws its waiting requests, and
  // may start waiting ones.
  void Exited(const Pid& pid);

  // The program is being stopped (SIGINT/SIGTERM): waiting requests fail,
  // and so does every later one; exits only free room.
  void Shutdown();

  // Outcomes since the last call, in the order they were decided.
  std::vector<Outcome> TakeOutcomes();

  // For tests and status: processes holding room, requests waiting.
  size_t running() const { return allocations_.size(); }
  size_t waiting() const { return tickets_.size(); }
  Resources capacity() const { return scheduler_.Nodes()[0].capacity; }

 private:
  struct Pending {
    Pid requester;
    pb::SpawnRequest request;
  };

  void Start(const Pid& requester, const pb::SpawnRequest& request, scheduler::AllocationId allocation);
  void Fail(const Pid& requester, uint64_t id, const absl::Status& status);
  void ServeGrants();
  void FailIfStuck();

  scheduler::Scheduler scheduler_;
  Launcher launcher_;
  std::map<Pid, scheduler::AllocationId> allocations_;  // processes holding room
  std::map<scheduler::TicketId, Pending> tickets_;      // waiting spawn() requests
  std::vector<Outcome> outcomes_;
  bool stopping_ = false;
};

}  // namespace constellation::internal
