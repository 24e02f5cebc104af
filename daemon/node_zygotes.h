#pragma once

// NodeZygotes: the node daemon's zygotes, one per deployment running here
// (lib/process/zygote.h, docs/process-model.md "On a node"). A deployment's
// first spawned function on this node is executed, as every launch used to
// be; right after it, the daemon executes the binary once more as the
// deployment's zygote, and from then on a launch of a spawned function with
// the same binary, argv and environment (and stdin on /dev/null) forks from
// it, or is handed to the spare it forked ahead: no exec, no loading, no
// fresh page tables. A deployment that spawns nothing here (its root alone,
// say) costs nothing: a deploy's start never waits for a zygote. The zygote runs as every launched process does (the
// daemon's user, the daemon's cgroup until its children join their leaves)
// and ends when its deployment ends: the master kills the deployment on every
// node that ran it once it has no process left (End). It also ends when the
// master is lost, with the daemon, and when the limit needs its place while
// its deployment runs nothing here (a master that died before it could say).
//
// Who decides: the daemon's own CONSTELLATION_ZYGOTE (ParseZygoteMode: "off"
// none here, "no-spare" zygotes that fork at each launch) and a deployment's
// CONSTELLATION_ZYGOTE in its environment, which can only turn them down for
// itself. At most `max` zygotes live at once; past that, one of a deployment
// that runs nothing here makes way, else launches execute.
//
// Ownership: owns the zygotes. Threading: thread-safe; a launch through one
// deployment's zygote waits only for that zygote (one launch at a time each).

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "lib/process/launch_description.h"
#include "lib/process/zygote.h"
#include "proto/local.pb.h"

namespace constellation::daemon {

class NodeZygotes {
 public:
  static constexpr size_t kDefaultMax = 64;

  // `runs`: whether a deployment has a process on this node now (NodeAgent::Runs).
  NodeZygotes(process_internal::ZygoteMode mode, pb::CgroupBase base, std::function<bool(uint64_t)> runs,
              size_t max = kDefaultMax)
      : mode_(mode), base_(std::move(base)), runs_(std::move(runs)), max_(max) {}
  ~NodeZygotes() { EndAll(); }
  NodeZygotes(const NodeZygotes&) = delete;
  NodeZygotes& operator=(const NodeZygotes&) = delete;

  // Launches a spawned function's process through `deployment`'s zygote, if
  // it has one that serves `launch`: the monitor's OS pid, or why the launch
  // failed. None when no zygote serves it (the caller executes it; a zygote
  // found gone is dropped first). The launch's data port is passed, not
  // closed: the caller closes its copy as after an exec.
  std::optional<absl::StatusOr<pid_t>> Launch(uint64_t deployment, const process_internal::LaunchDescription& launch);

  // After `launch` of `deployment` was executed: if it runs a spawned
  // function, starts the deployment's zygote from the same binary, argv and
  // environment, unless it has one or the settings or the limit say no.
  // True if one was started.
  bool Start(uint64_t deployment, const process_internal::LaunchDescription& launch);

  // Ends `deployment`'s zygote, if any; never waits.
  void End(uint64_t deployment);
  // Ends every zygote and waits, at most kEndWaitMs in all, until they (and
  // their spares' leaves) are gone.
  void EndAll();

  size_t size() const;
  // The OS pid of `deployment`'s zygote; 0 if none (for tests).
  pid_t os_pid(uint64_t deployment) const;

  static constexpr int kEndWaitMs = 2000;

 private:
  struct Entry {
    std::mutex mu;  // one launch at a time: a Zygote is one thread's
    std::unique_ptr<process_internal::Zygote> zygote ABSL_GUARDED_BY(mu);
    pid_t os_pid = 0;
  };
  // The mode `options` asks for: the daemon's, turned down by the launch's own setting.
  process_internal::ZygoteMode ModeFor(const process_internal::LaunchOptions& options) const;
  // Whether a zygote may start now: below the limit, or one of a deployment
  // that runs nothing here made way (ended).
  bool MakeRoomLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const process_internal::ZygoteMode mode_;
  const pb::CgroupBase base_;
  const std::function<bool(uint64_t)> runs_;
  const size_t max_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Entry>> zygotes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace constellation::daemon
