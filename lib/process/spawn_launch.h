#pragma once

// Both ends of a spawn's hand-off in local mode, for the library's own code:
// the bridge's launcher (LaunchLocal) and, in the new process, running the
// requested function (RunSpawnedFunction). Internal; users call spawn()
// (lib/process/spawn.h).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/core/internal_only.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "lib/process/local_spawner.h"
#include "lib/process/zygote.h"
#include "proto/local.pb.h"

namespace constellation::process_internal {

// Local mode's launcher, run by the bridge for a granted request: binds the
// child's data port and has the zygote fork the child when it can (same
// argv and environment), else starts this binary with the hand-off.
struct LocalLaunchContext {
  std::string bridge_name;
  std::vector<std::string> argv;  // when the request has none
  pb::CgroupBase cgroups;
  std::string secret;        // the deployment's data-plane secret, handed to every process
  Zygote* zygote = nullptr;  // none: always re-execute
};
absl::StatusOr<internal::LocalSpawner::Launched> LaunchLocal(const LocalLaunchContext& context, const Pid& parent,
                                                             const Resources& resources,
                                                             const pb::SpawnRequest& request);

// In a spawned process: finds the function and runs it; returns when it returns.
void RunSpawnedFunction(const pb::FunctionCall& call, const Pid& parent);

}  // namespace constellation::process_internal
