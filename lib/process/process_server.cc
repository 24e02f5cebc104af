#include "lib/process/process_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace constellation::internal {

absl::StatusOr<std::unique_ptr<ProcessServer>> ProcessServer::Create(int listen_fd, Handler* handler,
                                                                     std::string name) {
  int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    close(listen_fd);
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return std::unique_ptr<ProcessServer>(new ProcessServer(listen_fd, wake_fd, handler, std::move(name)));
}

ProcessServer::~ProcessServer() {
  for (const auto& [conn, connection] : conns_) close(connection.fd);
  close(listen_fd_);
  close(wake_fd_);
}

ProcessServer::Conn ProcessServer::Add(int fd) {
  Conn conn = next_conn_++;
  conns_[conn].fd = fd;
  return conn;
}

ProcessServer::Conn ProcessServer::AddConnection(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);  // reads drain until EAGAIN
  return Add(fd);
}

void ProcessServer::Watch(int fd, std::function<void()> on_ready) {
  watched_[fd] = Watched{std::move(on_ready), next_generation_++};
}

void ProcessServer::Unwatch(int fd) { watched_.erase(fd); }

std::vector<ProcessServer::Conn> ProcessServer::connections() const {
  std::vector<Conn> conns;
  for (const auto& [conn, connection] : conns_) conns.push_back(conn);
  return conns;
}

void ProcessServer::Turn(int timeout_ms) {
  // What each polled fd stood for when the turn began: a callback may close
  // an fd and a later accept reuse it, so each is checked again before use.
  enum class Kind { kWake, kListen, kConn, kWatched };
  struct Entry {
    Kind kind;
    uint64_t id;  // the connection, or the watch's generation
  };
  std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
  std::vector<Entry> entries{{Kind::kWake, 0}};
  // Out of fds, the listener stays readable and an accept fails at once:
  // polling it would spin. It is left out until a connection closes or
  // kAcceptRetry has passed, and the wait is bounded by that.
  if (accept_paused_ && std::chrono::steady_clock::now() >= accept_retry_at_) accept_paused_ = false;
  if (!accept_paused_) {
    fds.push_back({listen_fd_, POLLIN, 0});
    entries.push_back({Kind::kListen, 0});
  } else {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(accept_retry_at_ - std::chrono::steady_clock::now());
    const int retry_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    timeout_ms = timeout_ms < 0 ? retry_ms : std::min(timeout_ms, retry_ms);
  }
  for (const auto& [conn, connection] : conns_) {
    short events = 0;
    if (Readable(conn, connection)) events |= POLLIN;
    if (!connection.out.empty()) events |= POLLOUT;
    if (events == 0) continue;
    fds.push_back({connection.fd, events, 0});
    entries.push_back({Kind::kConn, static_cast<uint64_t>(conn)});
  }
  for (const auto& [fd, watched] : watched_) {
    fds.push_back({fd, POLLIN, 0});
    entries.push_back({Kind::kWatched, watched.generation});
  }
  if (poll(fds.data(), fds.size(), timeout_ms) <= 0) return;  // timeout, or EINTR
  for (size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].revents == 0) continue;
    switch (entries[i].kind) {
      case Kind::kWake:
        Woken();
        break;
      case Kind::kListen:
        Accept();
        break;
      case Kind::kConn: {
        Conn conn = static_cast<Conn>(entries[i].id);
        if (auto it = conns_.find(conn); it != conns_.end() && it->second.fd == fds[i].fd) {
          if (fds[i].events & POLLOUT) Flush(conn);
          if (fds[i].revents & ~POLLOUT) Read(conn);
        }
        break;
      }
      case Kind::kWatched:
        if (auto it = watched_.find(fds[i].fd); it != watched_.end() && it->second.generation == entries[i].id) {
          std::function<void()> on_ready = it->second.on_ready;  // it may Unwatch itself
          on_ready();
        }
        break;
    }
  }
}

bool ProcessServer::Accept() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        PauseAccepting();
        return false;
      }
      return true;  // EAGAIN: none left
    }
    absl::StatusOr<PeerCredentials> peer = PeerOf(fd);
    Conn conn = next_conn_++;
    if (!peer.ok() || !handler_->Admit(conn, *peer)) {
      close(fd);
      continue;
    }
    conns_[conn].fd = fd;
    Read(conn);
  }
}

bool ProcessServer::Readable(Conn conn, const Connection& connection) const {
  return !handler_->IsHeld(conn) && connection.out.bytes() <= kMaxQueuedPerConnection;
}

void ProcessServer::Read(Conn conn) {
  for (int i = 0; i < kPacketsPerTurn; ++i) {
    auto it = conns_.find(conn);
    if (it == conns_.end() || !Readable(conn, it->second)) return;
    pb::LocalMessage message;
    absl::StatusOr<bool> got = ReceiveLocal(it->second.fd, &message);
    if (!got.ok() && absl::IsUnavailable(got.status())) return;  // drained
    if (!got.ok() || !*got) {
      Drop(conn, got.ok() ? "" : got.status().ToString());
      return;
    }
    if ((message.has_spawn_request() || message.has_spawn_request_chunk()) && handler_->Identified(conn)) {
      if (!SpawnPacket(conn, message)) return;
      continue;
    }
    absl::Status handled = handler_->OnMessage(conn, message);
    if (!handled.ok()) {
      Drop(conn, handled.ToString());
      return;
    }
  }
}

bool ProcessServer::SpawnPacket(Conn conn, const pb::LocalMessage& message) {
  if (message.has_spawn_request()) {
    handler_->OnSpawnRequest(conn, message.spawn_request());
    return true;
  }
  const pb::RequestChunk& chunk = message.spawn_request_chunk();
  pb::SpawnRequest whole;
  switch (conns_[conn].chunks.Add(chunk, &whole)) {
    case RequestChunks::State::kPartial:
      return true;
    case RequestChunks::State::kWhole:
      handler_->OnSpawnRequest(conn, whole);
      return true;
    case RequestChunks::State::kTooBig:
      Reply(conn, RequestChunks::TooBigReply(chunk));
      return true;
    case RequestChunks::State::kMalformed:
      Drop(conn, "malformed spawn request");
      return false;
  }
  return true;
}

void ProcessServer::ReadAll() {
  for (Conn conn : connections()) Read(conn);
}

void ProcessServer::PauseAccepting() {
  if (!accept_paused_ && !warned_out_of_fds_) {
    fprintf(stderr,
            "%s: cannot accept a process's connection: %s; it waits until a connection closes (raise `ulimit -n`)\n",
            name_.c_str(), std::strerror(errno));
    warned_out_of_fds_ = true;
  }
  accept_paused_ = true;
  accept_retry_at_ = std::chrono::steady_clock::now() + kAcceptRetry;
}

void ProcessServer::Drop(Conn conn, absl::string_view why) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  if (!why.empty()) fprintf(stderr, "%s: dropping a connection: %.*s\n", name_.c_str(), int(why.size()), why.data());
  accept_paused_ = false;  // its fd is free for one waiting to be accepted
  close(it->second.fd);
  conns_.erase(it);
  handler_->OnClose(conn);
}

void ProcessServer::Reply(Conn conn, const pb::SpawnReply& spawn_reply) {
  pb::LocalMessage reply;
  *reply.mutable_spawn_reply() = spawn_reply;
  Send(conn, reply);
}

void ProcessServer::Send(Conn conn, const pb::LocalMessage& message) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;  // gone: nobody to tell
  absl::StatusOr<bool> sent = it->second.out.Send(it->second.fd, message);
  if (!sent.ok() && !absl::IsUnavailable(sent.status())) {
    fprintf(stderr, "%s: not sent: %s\n", name_.c_str(), sent.status().ToString().c_str());
  }
  // A broken socket (UNAVAILABLE): its next read says so.
}

void ProcessServer::Flush(Conn conn) {
  auto it = conns_.find(conn);
  if (it != conns_.end()) it->second.out.Flush(it->second.fd).IgnoreError();  // broken: as in Send
}

size_t ProcessServer::queued(Conn conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? 0 : it->second.out.bytes();
}

void ProcessServer::QueueReply(Conn conn, pb::SpawnReply reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    replies_.emplace_back(conn, std::move(reply));
  }
  Wake();
}

void ProcessServer::Wake() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void ProcessServer::Woken() {
  uint64_t count;
  (void)!read(wake_fd_, &count, sizeof(count));
  handler_->OnWake();
  std::vector<std::pair<Conn, pb::SpawnReply>> replies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    replies.swap(replies_);
  }
  for (const auto& [conn, reply] : replies) Reply(conn, reply);
}

}  // namespace constellation::internal
