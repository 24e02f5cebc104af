#include "lib/process/spawn_internal.h"

#include <fcntl.h>
#include <link.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/process/control_link.h"
#include "lib/process/launch_description.h"
#include "lib/process/local_socket.h"
#include "lib/process/proto_convert.h"
#include "lib/process/runtime.h"

extern char** environ;

namespace constellation::process_internal {
namespace {

struct FindByAddress {
  uintptr_t address;
  CodeLocation found;
  bool ok = false;
};

int MatchAddress(dl_phdr_info* info, size_t, void* data) {
  auto* find = static_cast<FindByAddress*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (find->address >= start && find->address < start + ph.p_memsz) {
      find->found.module = info->dlpi_name;
      find->found.offset = static_cast<int64_t>(find->address - info->dlpi_addr);
      find->ok = true;
      return 1;
    }
  }
  return 0;
}

struct FindByName {
  const std::string* module;
  uintptr_t base = 0;
  bool ok = false;
};

int MatchName(dl_phdr_info* info, size_t, void* data) {
  auto* find = static_cast<FindByName*>(data);
  if (*find->module != info->dlpi_name) return 0;
  find->base = info->dlpi_addr;
  find->ok = true;
  return 1;
}

// The request goes through the monitor (which first forwards the output
// written so far) to the bridge (local mode), or to the node daemon and on to
// the master (cluster mode), which places and starts the process and answers
// with its Pid.
absl::StatusOr<Pid> AskToSpawn(bool wait, const Resources& resources, pb::FunctionCall call) {
  const Runtime& rt = runtime();
  ControlLink& control = DefaultControlLink();
  pb::SpawnRequest request;
  request.set_id(control.NextRequestId());
  *request.mutable_parent() = ToProto(rt.self);
  *request.mutable_resources() = ToProto(resources);
  request.set_wait(wait);
  *request.mutable_call() = std::move(call);
  for (const std::string& arg : rt.argv) request.add_argv(arg);
  for (char** e = environ; *e != nullptr; ++e) request.add_env(*e);
  absl::StatusOr<pb::SpawnReply> answer = control.Call(request);
  if (!answer.ok()) return answer.status();
  if (answer->code() != 0) return absl::Status(static_cast<absl::StatusCode>(answer->code()), answer->message());
  return FromProto(answer->child());
}

}  // namespace

absl::StatusOr<CodeLocation> LocateCode(const void* address) {
  FindByAddress find{reinterpret_cast<uintptr_t>(address), {}};
  dl_iterate_phdr(MatchAddress, &find);
  if (!find.ok) return absl::InvalidArgumentError("spawn(): function is not in any loaded module");
  return find.found;
}

absl::StatusOr<const void*> ResolveCode(const CodeLocation& location) {
  FindByName find{&location.module};
  dl_iterate_phdr(MatchName, &find);
  if (!find.ok) return absl::NotFoundError(absl::StrCat("module \"", location.module, "\" is not loaded"));
  return reinterpret_cast<const void*>(find.base + location.offset);
}

absl::StatusOr<Pid> SpawnProcess(bool wait, const Resources& resources, Trampoline trampoline, GenericFn fn,
                                 std::string args) {
  RequireInit("spawn()");
  absl::StatusOr<CodeLocation> trampoline_at = LocateCode(reinterpret_cast<const void*>(trampoline));
  absl::StatusOr<CodeLocation> fn_at = LocateCode(reinterpret_cast<const void*>(fn));
  if (!trampoline_at.ok()) return trampoline_at.status();
  if (!fn_at.ok()) return fn_at.status();
  pb::FunctionCall call;
  call.set_trampoline(trampoline_at->offset);
  call.set_trampoline_module(trampoline_at->module);
  call.set_function(fn_at->offset);
  call.set_function_module(fn_at->module);
  call.set_args(std::move(args));
  return AskToSpawn(wait, resources, std::move(call));
}

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
