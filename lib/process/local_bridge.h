#pragma once

#include <memory>

#include "lib/core/pid.h"
#include "lib/process/local_spawner.h"
#include "lib/process/output_format.h"
#include "proto/local.pb.h"

namespace constellation::internal {

// Runs local mode's bridge in the calling process (the one the shell waits
// on) until every process of the program has exited, and returns the exit
// code DESIGN.md gives: 0 if all exited 0, else the first failure's code,
// 128+n for signal n. On SIGINT or SIGTERM it kills every process of the
// program, waits (boundedly) for them to go, and returns 128+signal.
//
// Takes ownership of `listen_fd` (the bridge's unix socket, where spawned
// processes connect) and `root_fd` (the root process's connection).
// `spawner` answers the program's spawn requests and starts their processes;
// the root is already accounted in it.
// Must be called from a single-threaded process; it blocks SIGINT, SIGTERM
// and SIGCHLD and becomes a child subreaper.
// `cgroups` is the program's cgroup base: the leaf of a process whose monitor
// died is removed here. SIGHUP counts as SIGTERM.
int RunLocalBridge(int listen_fd, int root_fd, const Pid& root, OutputFormat format,
                   std::unique_ptr<LocalSpawner> spawner, const pb::CgroupBase& cgroups);

}  // namespace constellation::internal
