#pragma once

// The machinery under spawn() that its template needs: how a function and its
// arguments reach a new process. Internal; users call spawn()
// (lib/process/spawn.h). Kept free of the generated protos and the scheduler,
// since spawn.h brings it into every user's translation unit; the launching
// side is in lib/process/spawn_launch.h.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"

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

}  // namespace constellation::process_internal
