#include "lib/process/spawn_internal.h"

#include <utility>

#include "lib/process/code_location.h"
#include "lib/process/control_link.h"
#include "lib/process/local_socket.h"
#include "lib/process/proto_convert.h"
#include "lib/process/runtime_state.h"
#include "proto/local.pb.h"

extern char** environ;

namespace constellation::process_internal {

using internal::FromProto;
using internal::ToProto;

namespace {

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

}  // namespace constellation::process_internal
