#pragma once

// What a node may offer its processes, when --mem/--cpu do not say: the
// limits the machine, its container or its job scheduler put on this daemon.
//
//  - memory: the smallest memory limit of this process's cgroup and its
//    ancestors (cgroup v2 memory.max; v1 memory.limit_in_bytes), else the
//    machine's MemTotal (/proc/meminfo);
//  - cpu: the CPUs this process may run on (sched_getaffinity), lowered to
//    the smallest cgroup CPU quota of its cgroup and ancestors (v2 cpu.max;
//    v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded down, at least 1.
//
// Everything is read under `root` ("/" on a machine; a fake tree in tests).
// Stateless; any thread.

#include <string>

#include "absl/status/statusor.h"
#include "lib/core/resources.h"

namespace constellation::daemon {

// `affinity_cpus`: how many CPUs the affinity mask allows (AffinityCpus()).
absl::StatusOr<Resources> DetectCapacity(const std::string& root, int affinity_cpus);
// sched_getaffinity's count for this process (at least 1).
int AffinityCpus();

}  // namespace constellation::daemon
