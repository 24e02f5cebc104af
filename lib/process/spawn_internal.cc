#include "lib/process/spawn_internal.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <utility>

#include "lib/process/code_location.h"
#include "lib/process/local_socket.h"
#include "lib/process/proto_convert.h"
#include "lib/process/runtime_state.h"
#include "proto/local.pb.h"

extern char** environ;

namespace constellation::process_internal {

using internal::FromProto;
using internal::kMaxOutputChunk;
using internal::ReceiveLocal;
using internal::SendLocal;
using internal::ToProto;

namespace {

// Big arguments or environments do not fit one packet: the request then goes
// in chunks, which the node daemon reassembles.
absl::Status SendSpawnRequest(int fd, const pb::LocalMessage& message) {
  if (message.ByteSizeLong() <= kMaxOutputChunk) return SendLocal(fd, message);
  std::string bytes = message.spawn_request().SerializeAsString();
  for (size_t offset = 0; offset < bytes.size(); offset += kMaxOutputChunk) {
    pb::LocalMessage chunk;
    chunk.mutable_spawn_request_chunk()->set_data(bytes.substr(offset, kMaxOutputChunk));
    chunk.mutable_spawn_request_chunk()->set_last(offset + kMaxOutputChunk >= bytes.size());
    chunk.mutable_spawn_request_chunk()->set_id(message.spawn_request().id());
    absl::Status sent = SendLocal(fd, chunk);
    if (!sent.ok()) return sent;
  }
  return absl::OkStatus();
}

// Several threads may spawn at once: a try_spawn answers at once even while
// another thread's spawn() waits for room. Requests go out whole, one at a
// time (a chunked one must not interleave with another); replies come back
// in any order on the one connection, and whichever waiting thread is reading
// hands the others theirs.
std::mutex g_send_mu;  // one request being written at a time
std::mutex g_reply_mu;
std::condition_variable g_reply_cv;
uint64_t g_next_request = 1;                   // guarded by g_reply_mu
std::map<uint64_t, pb::SpawnReply> g_replies;  // guarded by g_reply_mu: read, not yet taken
bool g_reading = false;                        // guarded by g_reply_mu: a thread is in ReceiveLocal
absl::Status g_connection = absl::OkStatus();  // guarded by g_reply_mu: once broken, for good

// Waits for the reply to request `id`, reading the connection when no other
// thread is.
absl::StatusOr<pb::SpawnReply> AwaitReply(uint64_t id) {
  const Runtime& rt = runtime();
  std::unique_lock<std::mutex> lock(g_reply_mu);
  while (true) {
    if (auto it = g_replies.find(id); it != g_replies.end()) {
      pb::SpawnReply reply = std::move(it->second);
      g_replies.erase(it);
      return reply;
    }
    if (!g_connection.ok()) return g_connection;
    if (g_reading) {
      g_reply_cv.wait(lock);
      continue;
    }
    g_reading = true;
    lock.unlock();
    pb::LocalMessage message;
    absl::StatusOr<bool> got = ReceiveLocal(rt.monitor_fd, &message);
    lock.lock();
    g_reading = false;
    if (!got.ok()) {
      g_connection = got.status();
    } else if (!*got) {
      g_connection =
          absl::UnavailableError(rt.fabric ? "lost the node daemon while spawning" : "lost the bridge while spawning");
    } else if (message.has_spawn_reply()) {
      g_replies[message.spawn_reply().id()] = message.spawn_reply();
    }
    g_reply_cv.notify_all();
  }
}

// The request goes through the monitor (which first forwards the output
// written so far) to the bridge (local mode), or to the node daemon and on to
// the master (cluster mode), which places and starts the process and answers
// with its Pid.
absl::StatusOr<Pid> AskToSpawn(bool wait, const Resources& resources, pb::FunctionCall call) {
  const Runtime& rt = runtime();
  pb::LocalMessage message;
  pb::SpawnRequest* request = message.mutable_spawn_request();
  {
    std::lock_guard<std::mutex> lock(g_reply_mu);
    request->set_id(g_next_request++);
  }
  *request->mutable_parent() = ToProto(rt.self);
  *request->mutable_resources() = ToProto(resources);
  request->set_wait(wait);
  *request->mutable_call() = std::move(call);
  for (const std::string& arg : rt.argv) request->add_argv(arg);
  for (char** e = environ; *e != nullptr; ++e) request->add_env(*e);
  {
    std::lock_guard<std::mutex> lock(g_send_mu);
    absl::Status sent = SendSpawnRequest(rt.monitor_fd, message);
    if (!sent.ok()) return sent;
  }
  absl::StatusOr<pb::SpawnReply> answer = AwaitReply(request->id());
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
