#pragma once

// Starting a process under its monitor, for init() (lib/process/runtime.cc):
// the monitor-to-be forks the user process, which joins its cgroup leaf and
// starts the data plane, and itself becomes the monitor. A zygote's spare
// does the same ahead of its spawn (docs/process-model.md, "Spares").
// Internal.
//
// Threading: all of it runs in a single-threaded process; the data plane's
// thread starts last, in the user process.

#include <string>
#include <vector>

#include "lib/core/internal_only.h"
#include "lib/process/zygote.h"
#include "proto/local.pb.h"

namespace constellation::process_internal {

// A broken invariant: says so on stderr and aborts.
[[noreturn]] void Die(const std::string& message);
// A start refused (bad setting, lost bridge): says so on stderr, exits 2.
[[noreturn]] void Fail(const std::string& message);

// This process's argv, from /proc/self/cmdline.
std::vector<std::string> ReadArgv();

// Sets the runtime state (runtime_state.h) from a spawn's hand-off, all but
// argv. Fails on a malformed one.
void ApplyHandOff(const pb::SpawnInfo& info);

// Forks the monitor. Returns in the user process (the child) with the data
// plane started; the monitor runs in the parent and exits there. `bridge_fd`
// is this process's connection to the bridge (or node agent), `listen_fd`
// its data port, which stays with the user process.
void StartMonitoredProcess(int bridge_fd, int listen_fd);

// In a spare the zygote forked (`start.spare_fd`): makes the leaf of the next
// spawn under `start.base` and forks its user process, which joins it and
// waits; then waits for the spawn itself, and starts it as
// StartMonitoredProcess would. Returns only in the user process, with the
// spawn's hand-off applied and the data plane started. Without a spawn (the
// zygote ends) the spare kills its process, removes the leaf and exits.
pb::SpawnInfo RunSpare(const ZygoteStart& start);

}  // namespace constellation::process_internal
