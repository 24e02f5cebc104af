#include "daemon/node_agent.h"

#include <poll.h>
#include <signal.h>
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
  std::unique_ptr<NodeAgent> agent(new NodeAgent(*listener, std::move(callbacks)));
  absl::StatusOr<std::unique_ptr<ProcessServer>> server =
      ProcessServer::Create(listener->fd, agent.get(), "constellation node");
  if (!server.ok()) {
    RemoveLocalListener(*listener);
    return server.status();
  }
  agent->server_ = *std::move(server);
  agent->thread_ = std::thread([a = agent.get()] { a->Loop(); });
  return agent;
}

NodeAgent::~NodeAgent() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    server_->Wake();
    thread_.join();
  }
  server_.reset();  // closes the connections and the listener
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
  server_->Wake();  // the loop starts watching the pidfd
}

void NodeAgent::Forget(const Pid& pid) {
  std::lock_guard<std::mutex> lock(mu_);
  processes_.erase(pid);
  server_->Wake();  // a connection held for it is dropped
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
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    WatchStarted();
    server_->Turn(-1);
    PruneUnidentified();
  }
}

void NodeAgent::WatchStarted() {
  std::map<int, Pid> pidfds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [pid, process] : processes_) {
      if (process.pidfd >= 0 && process.conn < 0 && !process.exited) pidfds[process.pidfd] = pid;
    }
  }
  for (const auto& [fd, pid] : pidfds_) {
    auto it = pidfds.find(fd);
    if (it == pidfds.end() || it->second != pid) server_->Unwatch(fd);
  }
  for (const auto& [fd, pid] : pidfds) {
    auto it = pidfds_.find(fd);
    if (it != pidfds_.end() && it->second == pid) continue;
    server_->Watch(fd, [this, pid] { CheckNeverConnected(pid); });
  }
  pidfds_ = std::move(pidfds);
}

bool NodeAgent::Admit(Conn conn, const PeerCredentials& peer) {
  if (!MayConnect(peer)) {
    // Say so, without a line per connection of a flood.
    ++refused_;
    if ((refused_ & (refused_ - 1)) == 0) {
      fprintf(stderr, "constellation node: refused %llu connection(s) to its socket from processes it did not start\n",
              static_cast<unsigned long long>(refused_));
    }
    return false;
  }
  conns_[conn] = Pid();
  peers_[conn] = peer.pid;
  return true;
}

bool NodeAgent::Identified(Conn conn) const {
  auto it = conns_.find(conn);
  return it != conns_.end() && !it->second.is_null();
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
      server_->Drop(conn, "its hello names a process it is not");
      continue;
    }
    conns_[conn] = pid;
    server_->Read(conn);
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
      server_->Drop(conn, "it is from a process it did not start");
    }
  }
}

absl::Status NodeAgent::Hello(Conn conn, const pb::LocalMessage& message) {
  absl::StatusOr<Pid> pid = message.has_hello() ? FromProto(message.hello().pid()) : absl::StatusOr<Pid>(Pid());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pid.ok() ? processes_.find(*pid) : processes_.end();
  if (it == processes_.end() || it->second.conn >= 0) {
    return absl::PermissionDeniedError("its hello names no process waiting to connect");
  }
  if (it->second.monitor_os_pid == 0) {
    held_[conn] = *pid;  // launched, Started() not called yet: decided then (ResolveHeld)
    return absl::OkStatus();
  }
  if (it->second.monitor_os_pid != peers_[conn])
    return absl::PermissionDeniedError("its hello names a process it is not");
  it->second.conn = conn;
  conns_[conn] = *pid;
  return absl::OkStatus();
}

absl::Status NodeAgent::OnMessage(Conn conn, const pb::LocalMessage& message) {
  const Pid speaker = conns_[conn];
  if (speaker.is_null()) return Hello(conn, message);
  uint64_t deployment = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = processes_.find(speaker);
    if (it == processes_.end()) return absl::OkStatus();  // reported its exit: nothing more is heard
    deployment = it->second.deployment;
    if (message.has_child_started()) it->second.os_pid = message.child_started().os_pid();
  }
  if (!message.has_event()) return absl::OkStatus();
  absl::StatusOr<Pid> claimed = FromProto(message.event().pid());
  if (!claimed.ok() || *claimed != speaker) return absl::OkStatus();  // a process speaks only for itself
  if (message.event().has_exit()) {
    Exited(speaker, message.event().exit());
  } else {
    callbacks_.on_event(deployment, message.event());
  }
  return absl::OkStatus();
}

void NodeAgent::OnSpawnRequest(Conn conn, const pb::SpawnRequest& request) {
  uint64_t deployment = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = processes_.find(conns_[conn]);
    if (it == processes_.end()) return;
    deployment = it->second.deployment;
  }
  ProcessServer* server = server_.get();
  callbacks_.on_spawn(deployment, request,
                      [server, conn](const pb::SpawnReply& reply) { server->QueueReply(conn, reply); });
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

void NodeAgent::OnClose(Conn conn) {
  Pid pid = conns_[conn];
  conns_.erase(conn);
  peers_.erase(conn);
  held_.erase(conn);
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
  server_->Accept();  // its connection, if it made one, is queued by now
  for (const auto& [conn, speaker] : std::map<Conn, Pid>(conns_)) {
    if (speaker.is_null()) server_->Read(conn);
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
