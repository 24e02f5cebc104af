#include "lib/process/control_link.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "lib/process/local_socket.h"
#include "lib/process/output_format.h"
#include "lib/process/proto_convert.h"

namespace constellation::process_internal {

using internal::FromProto;
using internal::kMaxOutputChunk;
using internal::ReceiveLocal;
using internal::SendLocal;
using internal::SignalName;
using internal::ToProto;

uint64_t ControlLink::NextRequestId() {
  std::lock_guard<std::mutex> lock(mu_);
  return next_request_++;
}

absl::Status ControlLink::Send(const pb::LocalMessage& message) {
  std::lock_guard<std::mutex> lock(send_mu_);
  return SendLocal(fd_, message);
}

absl::StatusOr<pb::SpawnReply> ControlLink::Call(const pb::SpawnRequest& request) {
  pb::LocalMessage message;
  *message.mutable_spawn_request() = request;
  {
    // Big arguments or environments do not fit one packet: the request then
    // goes in chunks, which the bridge or node agent reassembles; a chunked
    // request must not interleave with another packet.
    std::lock_guard<std::mutex> lock(send_mu_);
    absl::Status sent;
    if (message.ByteSizeLong() <= kMaxOutputChunk) {
      sent = SendLocal(fd_, message);
    } else {
      std::string bytes = request.SerializeAsString();
      for (size_t offset = 0; offset < bytes.size() && sent.ok(); offset += kMaxOutputChunk) {
        pb::LocalMessage chunk;
        chunk.mutable_spawn_request_chunk()->set_data(bytes.substr(offset, kMaxOutputChunk));
        chunk.mutable_spawn_request_chunk()->set_last(offset + kMaxOutputChunk >= bytes.size());
        chunk.mutable_spawn_request_chunk()->set_id(request.id());
        sent = SendLocal(fd_, chunk);
      }
    }
    if (!sent.ok()) return sent;
  }
  std::unique_lock<std::mutex> lock(mu_);
  replies_cv_.wait(lock, [&] { return replies_.contains(request.id()) || !connection_.ok(); });
  auto it = replies_.find(request.id());
  if (it == replies_.end()) return connection_;
  pb::SpawnReply reply = std::move(it->second);
  replies_.erase(it);
  return reply;
}

void ControlLink::Watch(const Pid& pid) {
  pb::LocalMessage message;
  *message.mutable_watch()->add_pids() = ToProto(pid);
  // A broken connection means the monitor is gone, and with it this process (PR_SET_PDEATHSIG).
  Send(message).IgnoreError();
}

void ControlLink::ReportUndelivered(uint64_t bytes, uint32_t peers) {
  pb::LocalMessage message;
  message.mutable_undelivered()->set_bytes(bytes);
  message.mutable_undelivered()->set_peers(peers);
  Send(message).IgnoreError();
}

void ControlLink::OnReadable() {
  while (true) {
    pb::LocalMessage message;
    absl::StatusOr<bool> got = ReceiveLocal(fd_, &message, /*dont_wait=*/true);
    if (!got.ok() && absl::IsUnavailable(got.status())) return;  // drained
    if (!got.ok()) return Broken(got.status());
    if (!*got) {
      return Broken(absl::UnavailableError(fabric_ ? "lost the node daemon (this process's monitor is gone)"
                                                   : "lost the bridge (this process's monitor is gone)"));
    }
    if (message.has_spawn_reply()) {
      std::lock_guard<std::mutex> lock(mu_);
      replies_[message.spawn_reply().id()] = message.spawn_reply();
      replies_cv_.notify_all();
    } else if (message.has_gone()) {
      absl::StatusOr<Pid> pid = FromProto(message.gone().pid());
      if (!pid.ok()) continue;
      if (on_verdict_) on_verdict_(*pid, message.gone());
      if (on_gone_) on_gone_(*pid, GoneStatus(*pid, message.gone()), message.gone().node_lost());
    }
  }
}

void ControlLink::Broken(absl::Status why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (connection_.ok()) connection_ = std::move(why);
  replies_cv_.notify_all();
}

namespace {
ControlLink* g_control = nullptr;  // set once by init(), before any thread starts
}  // namespace

void InstallControlLink(int fd, bool fabric) { g_control = new ControlLink(fd, fabric); }

ControlLink& DefaultControlLink() {
  if (g_control == nullptr) {
    fprintf(stderr, "constellation: the monitor connection was used before init()\n");
    abort();
  }
  return *g_control;
}

absl::Status GoneStatus(const Pid& pid, const pb::ProcessGone& gone) {
  const std::string who = absl::StrCat("process ", pid.to_string());
  if (gone.no_process()) {
    return absl::UnavailableError(
        absl::StrCat("no process ", pid.to_string(), " in this program (it never existed, or is of another one)"));
  }
  if (gone.node_lost()) return absl::UnavailableError(absl::StrCat(who, " is gone: its node was lost"));
  const pb::ExitEvent& exit = gone.exit();
  std::string detail = exit.error().empty() ? "" : absl::StrCat(" (", exit.error(), ")");
  if (exit.memory_exceeded()) return absl::UnavailableError(absl::StrCat(who, " ran out of memory", detail));
  if (exit.status_case() == pb::ExitEvent::kSignal) {
    return absl::UnavailableError(
        absl::StrCat(who, " was killed by signal ", exit.signal(), " (", SignalName(exit.signal()), ")", detail));
  }
  return absl::UnavailableError(absl::StrCat(who, " exited with code ", exit.code(), detail));
}

}  // namespace constellation::process_internal
