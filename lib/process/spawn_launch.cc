#include "lib/process/spawn_launch.h"

#include <unistd.h>

#include <cstdio>

#include "lib/process/code_location.h"
#include "lib/process/launch.h"
#include "lib/process/launch_description.h"
#include "lib/process/proto_convert.h"
#include "lib/process/spawn_internal.h"

namespace constellation::process_internal {

using internal::LocalSpawner;
using internal::ToProto;

absl::StatusOr<LocalSpawner::Launched> LaunchLocal(const LocalLaunchContext& context, const Pid& parent,
                                                   const Resources& resources, const pb::SpawnRequest& request) {
  LaunchWhat what;
  what.path = "/proc/self/exe";
  what.argv.assign(request.argv().begin(), request.argv().end());
  what.default_argv = context.argv;
  what.env.assign(request.env().begin(), request.env().end());
  what.parent = ToProto(parent);
  what.resources = ToProto(resources);
  what.call = request.call();
  what.secret = context.secret;
  absl::StatusOr<LaunchDescription> launch =
      DescribeLaunch({.bridge = context.bridge_name, .cgroups = context.cgroups}, std::move(what));
  if (!launch.ok()) return launch.status();
  if (context.zygote != nullptr && context.zygote->Serves(launch->options)) {
    absl::StatusOr<pid_t> forked = context.zygote->Launch(launch->info);
    // A zygote that is gone leaves exec to do it; any other failure is the answer.
    if (forked.ok()) return LocalSpawner::Launched{launch->port.pid, *forked};
    if (!absl::IsUnavailable(forked.status())) return forked.status();
    fprintf(stderr, "constellation: %s; spawning by exec from now on\n", forked.status().ToString().c_str());
  }
  absl::StatusOr<pid_t> os_pid = Launch(*launch);
  if (!os_pid.ok()) return os_pid.status();
  return LocalSpawner::Launched{launch->port.pid, *os_pid};
}

void RunSpawnedFunction(const pb::FunctionCall& call, const Pid& parent) {
  absl::StatusOr<const void*> trampoline = ResolveCode({call.trampoline_module(), call.trampoline()});
  absl::StatusOr<const void*> fn = ResolveCode({call.function_module(), call.function()});
  if (!trampoline.ok() || !fn.ok()) {
    fprintf(stderr, "constellation: cannot find the spawned function: %s\n",
            (trampoline.ok() ? fn.status() : trampoline.status()).ToString().c_str());
    _exit(127);
  }
  reinterpret_cast<Trampoline> (*trampoline)(reinterpret_cast<GenericFn>(*fn), parent, call.args());
}

}  // namespace constellation::process_internal
