#pragma once

// The machinery under spawn(): how a function and its arguments reach a new
// process. Internal; users call spawn() (lib/process/spawn.h).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "lib/process/local_spawner.h"
#include "proto/local.pb.h"

namespace constellation::process_internal {

// A type-erased entry point: decodes `args` and calls `fn` (really a
// void (*)(Pid, Args...)) with the parent's Pid and the arguments.
using GenericFn = void (*)();
using Trampoline = void (*)(GenericFn fn, const Pid& parent, absl::string_view args);

// Starts a new process running trampoline(fn, pid(), args). Returns its Pid
// before it runs. Thread-safe.
// `wait`: spawn() (wait for capacity) rather than try_spawn().
absl::StatusOr<Pid> SpawnProcess(bool wait, const Resources& resources, Trampoline trampoline, GenericFn fn,
                                 std::string args);

// Local mode's launcher, run by the bridge for a granted request: binds the
// child's data port and starts this binary with the hand-off.
struct LocalLaunchContext {
  std::string bridge_name;
  std::vector<std::string> argv;  // when the request has none
  pb::CgroupBase cgroups;
  std::string secret;  // the deployment's data-plane secret, handed to every process
};
absl::StatusOr<internal::LocalSpawner::Launched> LaunchLocal(const LocalLaunchContext& context, const Pid& parent,
                                                             const Resources& resources,
                                                             const pb::SpawnRequest& request);

// In a spawned process: finds the function and runs it; returns when it returns.
void RunSpawnedFunction(const pb::FunctionCall& call, const Pid& parent);

// A code address as (module, offset): the module is the executable or the
// shared library that holds it, so the address can be found again in another
// process of the same binary whatever address-space randomisation did.
struct CodeLocation {
  std::string module;  // "" for the main executable
  int64_t offset = 0;
};
absl::StatusOr<CodeLocation> LocateCode(const void* address);
absl::StatusOr<const void*> ResolveCode(const CodeLocation& location);

}  // namespace constellation::process_internal
