#include "daemon/node_agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "lib/process/proto_convert.h"

namespace constellation::daemon {

absl::StatusOr<std::unique_ptr<NodeAgent>> NodeAgent::Start(Callbacks callbacks) {
  absl::StatusOr<LocalListener> listener = ListenLocal("node");
  if (!listener.ok()) return listener.status();
  int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::unique_ptr<NodeAgent> agent(new NodeAgent(*std::move(listener), wake_fd, std::move(callbacks)));
  agent->thread_ = std::thread([a = agent.get()] { a->Loop(); });
  return agent;
}

NodeAgent::NodeAgent(LocalListener listener, int wake_fd, Callbacks callbacks)
    : listener_(std::move(listener)), listen_fd_(listener_.fd), wake_fd_(wake_fd), callbacks_(std::move(callbacks)) {}

NodeAgent::~NodeAgent() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  for (const auto& [conn, pid] : conns_) close(conn);
  close(listen_fd_);
  close(wake_fd_);
  RemoveLocalListener(listener_);
}

void NodeAgent::Register(const Pid& pid, uint64_t deployment) {
  std::lock_guard<std::mutex> lock(mu_);
  processes_[pid].deployment = deployment;
}

void NodeAgent::Started(const Pid& pid, pid_t monitor_os_pid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = processes_.find(pid);
  if (it == processes_.end()) return;
  it->second.monitor_os_pid = monitor_os_pid;
  it->second.pidfd = static_cast<int>(syscall(SYS_pidfd_open, monitor_os_pid, 0));
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));  // the loop starts watching the pidfd
}

void NodeAgent::Forget(const Pid& pid) {
  std::lock_guard<std::mutex> lock(mu_);
  processes_.erase(pid);
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));  // a connection held for it is dropped
}

size_t NodeAgent::live() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [pid, process] : processes_) n += process.exited ? 0 : 1;
  return n;
}

void NodeAgent::Kill(const std::function<bool(const Pid&, const Process&)>& which, int signal) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [pid, process] : processes_) {
    if (process.exited || !which(pid, process)) continue;
    if (signal == SIGKILL) {
      if (process.monitor_os_pid > 0) kill(process.monitor_os_pid, SIGKILL);
      if (process.os_pid > 0) kill(process.os_pid, SIGKILL);
    } else if (process.os_pid > 0) {
      kill(process.os_pid, signal);
    } else if (process.monitor_os_pid > 0) {
      kill(process.monitor_os_pid, signal);
    }
  }
}

void NodeAgent::KillDeployment(uint64_t deployment) { Signal(deployment, {}, SIGKILL); }

void NodeAgent::KillAll() {
  Kill([](const Pid&, const Process&) { return true; }, SIGKILL);
}

void NodeAgent::Signal(uint64_t deployment, const std::vector<Pid>& pids, int signal) {
  std::set<Pid> chosen(pids.begin(), pids.end());
  Kill(
      [&](const Pid& pid, const Process& p) {
        if (chosen.empty()) return p.deployment == deployment;
        return chosen.contains(pid) && (deployment == 0 || p.deployment == deployment);
      },
      signal);
}

void NodeAgent::Loop() {
  while (true) {
    std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    std::map<int, Pid> pidfds;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      for (const auto& [pid, process] : processes_) {
        if (process.pidfd >= 0 && process.conn < 0 && !process.exited) pidfds[process.pidfd] = pid;
      }
    }
    for (const auto& [conn, pid] : conns_) {
      if (!held_.contains(conn)) fds.push_back({conn, POLLIN, 0});
    }
    for (const auto& [fd, pid] : pidfds) fds.push_back({fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == wake_fd_) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof(count));
        ResolveHeld();
        SendReplies();
      } else if (p.fd == listen_fd_) {
        Accept();
      } else if (pidfds.contains(p.fd)) {
        CheckNeverConnected(pidfds[p.fd]);
      } else if (conns_.contains(p.fd)) {
        Read(p.fd);
      }
    }
    PruneUnidentified();
  }
}

void NodeAgent::Accept() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    absl::StatusOr<PeerCredentials> peer = PeerOf(fd);
    if (!peer.ok() || !MayConnect(*peer)) {
      close(fd);
      // Say so, without a line per connection of a flood.
      ++refused_;
      if ((refused_ & (refused_ - 1)) == 0) {
        fprintf(stderr,
                "constellation node: refused %llu connection(s) to its socket from processes it did not start\n",
                static_cast<unsigned long long>(refused_));
      }
      continue;
    }
    conns_[fd] = Pid();
    peers_[fd] = peer->pid;
    Read(fd);
  }
}

bool NodeAgent::MayConnect(const PeerCredentials& peer) const {
  if (peer.uid != geteuid()) return false;
  size_t unidentified = 0;
  for (const auto& [conn, pid] : conns_) unidentified += pid.is_null() ? 1 : 0;
  bool launching = false;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [pid, process] : processes_) {
    if (process.exited || process.conn >= 0) continue;
    if (process.monitor_os_pid == peer.pid) return true;
    if (process.monitor_os_pid == 0) launching = true;
  }
  return launching && unidentified < kMaxUnidentified;
}

void NodeAgent::ResolveHeld() {
  for (const auto& [conn, pid] : std::map<int, Pid>(held_)) {
    bool admitted = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = processes_.find(pid);
      if (it != processes_.end() && it->second.conn < 0 && it->second.monitor_os_pid == 0) continue;  // not yet
      admitted = it != processes_.end() && it->second.conn < 0 && it->second.monitor_os_pid == peers_[conn];
      if (admitted) it->second.conn = conn;
    }
    held_.erase(conn);
    if (!admitted) {
      Drop(conn, "its hello names a process it is not");
      continue;
    }
    conns_[conn] = pid;
    Read(conn);
  }
}

void NodeAgent::PruneUnidentified() {
  std::set<pid_t> monitors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [pid, process] : processes_) {
      if (process.exited || process.conn >= 0) continue;
      if (process.monitor_os_pid == 0) return;  // a launch in flight: its monitor may be among them
      monitors.insert(process.monitor_os_pid);
    }
  }
  for (const auto& [conn, pid] : std::map<int, Pid>(conns_)) {
    if (pid.is_null() && !held_.contains(conn) && !monitors.contains(peers_[conn])) {
      Drop(conn, "it is from a process it did not start");
    }
  }
}

void NodeAgent::Drop(int conn, const char* why) {
  fprintf(stderr, "constellation node: dropping a connection: %s\n", why);
  conns_.erase(conn);
  peers_.erase(conn);
  held_.erase(conn);
  partial_requests_.erase(conn);
  close(conn);
}

void NodeAgent::Read(int conn) {
  for (int i = 0; i < 64 && conns_.contains(conn) && !held_.contains(conn); ++i) {
    pb::LocalMessage message;
    absl::StatusOr<bool> got = ReceiveLocal(conn, &message);
    if (!got.ok() && absl::IsUnavailable(got.status())) return;
    if (!got.ok() || !*got) {
      Close(conn);
      return;
    }
    Handle(conn, message);
  }
}

void NodeAgent::Handle(int conn, const pb::LocalMessage& message) {
  Pid& speaker = conns_[conn];
  if (speaker.is_null()) {
    absl::StatusOr<Pid> pid = message.has_hello() ? FromProto(message.hello().pid()) : absl::StatusOr<Pid>(Pid());
    const char* refused = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pid.ok() ? processes_.find(*pid) : processes_.end();
      if (it == processes_.end() || it->second.conn >= 0) {
        refused = "its hello names no process waiting to connect";
      } else if (it->second.monitor_os_pid == 0) {
        held_[conn] = *pid;  // launched, Started() not called yet: decided then (ResolveHeld)
        return;
      } else if (it->second.monitor_os_pid != peers_[conn]) {
        refused = "its hello names a process it is not";
      } else {
        it->second.conn = conn;
        speaker = *pid;
        return;
      }
    }
    Drop(conn, refused);
    return;
  }
  uint64_t deployment = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Process& process = processes_[speaker];
    deployment = process.deployment;
    if (message.has_child_started()) process.os_pid = message.child_started().os_pid();
  }
  if (message.has_event()) {
    absl::StatusOr<Pid> claimed = FromProto(message.event().pid());
    if (!claimed.ok() || *claimed != speaker) return;  // a process speaks only for itself
    if (message.event().has_exit()) {
      Exited(speaker, message.event().exit());
    } else {
      callbacks_.on_event(deployment, message.event());
    }
  } else if (message.has_spawn_request_chunk()) {
    const pb::RequestChunk& chunk = message.spawn_request_chunk();
    pb::LocalMessage whole;
    RequestChunks::State state = partial_requests_[conn].Add(chunk, whole.mutable_spawn_request());
    if (state == RequestChunks::State::kPartial) return;
    partial_requests_.erase(conn);
    if (state == RequestChunks::State::kWhole) return Handle(conn, whole);
    pb::SpawnReply refusal = RequestChunks::TooBigReply(chunk);
    if (state == RequestChunks::State::kMalformed) refusal.set_message("malformed spawn request");
    QueueReply(speaker, refusal);
  } else if (message.has_spawn_request()) {
    Pid requester = speaker;
    callbacks_.on_spawn(deployment, message.spawn_request(),
                        [this, requester](const pb::SpawnReply& reply) { QueueReply(requester, reply); });
  }
}

void NodeAgent::QueueReply(const Pid& requester, const pb::SpawnReply& reply) {
  std::lock_guard<std::mutex> lock(mu_);
  replies_.emplace_back(requester, reply);
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void NodeAgent::SendReplies() {
  std::vector<std::pair<Pid, pb::SpawnReply>> replies;
  std::map<Pid, int> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    replies.swap(replies_);
    for (const auto& [pid, reply] : replies) {
      auto it = processes_.find(pid);
      if (it != processes_.end()) conns[pid] = it->second.conn;
    }
  }
  for (const auto& [pid, reply] : replies) {
    auto it = conns.find(pid);
    if (it == conns.end() || it->second < 0) continue;  // gone: nobody to answer
    pb::LocalMessage message;
    *message.mutable_spawn_reply() = reply;
    SendLocal(it->second, message).IgnoreError();
  }
}

void NodeAgent::Exited(const Pid& pid, const pb::ExitEvent& exit) {
  uint64_t deployment = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Process& process = processes_[pid];
    if (process.exited) return;
    process.exited = true;
    deployment = process.deployment;
    if (process.pidfd >= 0) close(process.pidfd);
    process.pidfd = -1;
  }
  pb::ProcessEvent event;
  *event.mutable_pid() = ToProto(pid);
  *event.mutable_exit() = exit;
  callbacks_.on_event(deployment, event);
  std::lock_guard<std::mutex> lock(mu_);
  processes_.erase(pid);  // its connection closes by itself
}

void NodeAgent::Close(int conn) {
  Pid pid = conns_[conn];
  conns_.erase(conn);
  peers_.erase(conn);
  held_.erase(conn);
  partial_requests_.erase(conn);
  close(conn);
  if (pid.is_null()) return;
  bool reported;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = processes_.find(pid);
    reported = it == processes_.end() || it->second.exited;
  }
  if (!reported) {
    pb::ExitEvent exit;
    exit.set_signal(SIGKILL);
    exit.set_error("its monitor died");
    Exited(pid, exit);
  }
}

void NodeAgent::CheckNeverConnected(const Pid& pid) {
  ResolveHeld();
  Accept();  // its connection, if it made one, is queued by now
  for (const auto& [conn, speaker] : std::map<int, Pid>(conns_)) {
    if (speaker.is_null()) Read(conn);
  }
  bool connected;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = processes_.find(pid);
    connected = it == processes_.end() || it->second.conn >= 0 || it->second.exited;
  }
  if (connected) return;
  pb::ExitEvent exit;
  exit.set_code(127);
  exit.set_error("ended before init()");
  Exited(pid, exit);
}

}  // namespace constellation::daemon
