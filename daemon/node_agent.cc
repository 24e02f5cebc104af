#include "daemon/node_agent.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <set>
#include <utility>

#include "daemon/log/log.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::FromProto;
using internal::ListenLocal;
using internal::LocalListener;
using internal::PeerCredentials;
using internal::ProcessServer;
using internal::RemoveLocalListener;
using internal::ToProto;

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
  launched_[pid].deployment = deployment;
  bridge_.Announce(pid);
}

void NodeAgent::Started(const Pid& pid, pid_t monitor_os_pid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = launched_.find(pid);
  if (it == launched_.end()) return;
  bridge_.SetMonitor(pid, monitor_os_pid);
  it->second.monitor_os_pid = monitor_os_pid;
  it->second.pidfd = static_cast<int>(syscall(SYS_pidfd_open, monitor_os_pid, 0));  // or again in WatchStarted
  server_->Wake();  // the loop starts watching the pidfd
}

void NodeAgent::Forget(const Pid& pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = launched_.find(pid); it != launched_.end()) {
    // Its launch failed: a process of the deployment that waits on it hears it is none.
    pb::ProcessGone none;
    *none.mutable_pid() = ToProto(pid);
    none.set_no_process(true);
    verdicts_in_.emplace_back(it->second.deployment, std::vector<pb::ProcessGone>{none});
  }
  launched_.erase(pid);
  bridge_.Remove(pid);
  server_->Wake();  // a connection held for it is dropped
}

size_t NodeAgent::live() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(bridge_.live());
}

void NodeAgent::Kill(const std::function<bool(const Pid&, const Launched&)>& which, int signal) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [pid, launched] : launched_) {
    if (!which(pid, launched)) continue;
    pid_t monitor = bridge_.MonitorOsPid(pid), process = bridge_.OsPid(pid);
    if (signal == SIGKILL) {
      if (monitor > 0) kill(monitor, SIGKILL);
      if (process > 0) kill(process, SIGKILL);
    } else if (process > 0) {
      kill(process, signal);
    } else if (monitor > 0) {
      kill(monitor, signal);
    }
  }
}

void NodeAgent::KillDeployment(uint64_t deployment) { Signal(deployment, {}, SIGKILL); }

void NodeAgent::KillAll() {
  Kill([](const Pid&, const Launched&) { return true; }, SIGKILL);
}

void NodeAgent::Signal(uint64_t deployment, const std::vector<Pid>& pids, int signal) {
  std::set<Pid> chosen(pids.begin(), pids.end());
  Kill(
      [&](const Pid& pid, const Launched& p) {
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
    server_->Turn(pidfds_missing_ || !ended_unaccepted_.empty() ? kRetryMs : -1);
    DecideEndedUnaccepted();
    PruneUnidentified();
  }
}

void NodeAgent::WatchStarted() {
  std::map<int, Pid> pidfds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pidfds_missing_ = false;
    for (auto& [pid, launched] : launched_) {
      if (bridge_.HasConnected(pid)) continue;
      if (launched.pidfd < 0 && launched.monitor_os_pid > 0) {
        // Out of fds is no sign that the process ended: try again.
        launched.pidfd = static_cast<int>(syscall(SYS_pidfd_open, launched.monitor_os_pid, 0));
        if (launched.pidfd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOMEM)) {
          pidfds_missing_ = true;
        } else if (launched.pidfd < 0) {
          if (errno == ESRCH) ended_unaccepted_.insert(pid);  // it ended (and was reaped)
          launched.monitor_os_pid = 0;                        // ESRCH, or no pidfds here (ENOSYS, EPERM): not again
        }
      }
      if (launched.pidfd >= 0) pidfds[launched.pidfd] = pid;
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
      LogWarning("node", "refused %d connection(s) to its socket from processes it did not start", refused_);
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
  for (const auto& [pid, launched] : launched_) {
    if (bridge_.HasConnected(pid)) continue;
    pid_t monitor = bridge_.MonitorOsPid(pid);
    if (monitor == peer.pid) return true;
    if (monitor == 0) launching = true;
  }
  return launching && unidentified < kMaxUnidentified;
}

void NodeAgent::ResolveHeld() {
  for (const auto& [conn, hello] : std::map<Conn, pb::LocalMessage>(held_)) {
    const Pid pid = *FromProto(hello.hello().pid());  // parsed when it was held
    bool admitted = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool waiting = launched_.contains(pid) && !bridge_.HasConnected(pid);
      if (waiting && bridge_.MonitorOsPid(pid) == 0) continue;  // not yet
      admitted = waiting && bridge_.MonitorOsPid(pid) == peers_[conn];
      if (admitted) admitted = bridge_.OnMessage(conn, hello).ok();
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
    for (const auto& [pid, launched] : launched_) {
      if (bridge_.HasConnected(pid)) continue;
      pid_t monitor = bridge_.MonitorOsPid(pid);
      if (monitor == 0) return;  // a launch in flight: its monitor may be among them
      monitors.insert(monitor);
    }
  }
  for (const auto& [conn, pid] : std::map<Conn, Pid>(conns_)) {
    if (pid.is_null() && !held_.contains(conn) && !monitors.contains(peers_[conn])) {
      server_->Drop(conn, "it is from a process it did not start");
    }
  }
}

absl::Status NodeAgent::Hello(Conn conn, const pb::LocalMessage& message) {
  absl::StatusOr<Pid> pid = message.has_hello() ? FromProto(message.hello().pid()) : absl::StatusOr<Pid>(Pid());
  std::lock_guard<std::mutex> lock(mu_);
  if (!pid.ok() || !launched_.contains(*pid) || bridge_.HasConnected(*pid)) {
    return absl::PermissionDeniedError("its hello names no process waiting to connect");
  }
  pid_t monitor = bridge_.MonitorOsPid(*pid);
  if (monitor == 0) {
    held_[conn] = message;  // launched, Started() not called yet: decided then (ResolveHeld)
    return absl::OkStatus();
  }
  if (monitor != peers_[conn]) return absl::PermissionDeniedError("its hello names a process it is not");
  absl::Status status = bridge_.OnMessage(conn, message);
  if (status.ok()) conns_[conn] = *pid;
  return status;
}

absl::Status NodeAgent::OnMessage(Conn conn, const pb::LocalMessage& message) {
  const Pid speaker = conns_[conn];
  if (speaker.is_null()) return Hello(conn, message);
  if (message.has_watch()) return OnWatch(conn, speaker, message.watch());
  std::vector<std::pair<uint64_t, pb::ProcessEvent>> events;
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!launched_.contains(speaker)) return absl::OkStatus();  // its exit is reported: nothing more is heard
    // Spawn lines are the master's; a process reports its output and exit.
    if (message.has_event() && message.event().has_spawn()) return absl::OkStatus();
    status = bridge_.OnMessage(conn, message);
    events = Collect();
  }
  Deliver(events);
  return status;
}

void NodeAgent::OnSpawnRequest(Conn conn, const pb::SpawnRequest& request) {
  uint64_t deployment = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = launched_.find(conns_[conn]);
    if (it == launched_.end()) return;
    deployment = it->second.deployment;
  }
  ProcessServer* server = server_.get();
  callbacks_.on_spawn(deployment, request,
                      [server, conn](const pb::SpawnReply& reply) { server->QueueReply(conn, reply); });
}

void NodeAgent::OnClose(Conn conn) {
  gone_.Close(conn);
  Pid pid = conns_[conn];
  conns_.erase(conn);
  peers_.erase(conn);
  held_.erase(conn);
  if (pid.is_null()) return;
  std::vector<std::pair<uint64_t, pb::ProcessEvent>> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bridge_.OnClose(conn);  // not reported yet: killed, its monitor died
    events = Collect();
  }
  Deliver(events);
}

void NodeAgent::CheckNeverConnected(const Pid& pid) {
  ResolveHeld();
  ended_unaccepted_.insert(pid);  // its connection, if it made one, is queued by now
  DecideEndedUnaccepted();
}

void NodeAgent::DecideEndedUnaccepted() {
  if (ended_unaccepted_.empty() || !server_->Accept()) return;
  for (const auto& [conn, speaker] : std::map<Conn, Pid>(conns_)) {
    if (speaker.is_null()) server_->Read(conn);
  }
  std::vector<std::pair<uint64_t, pb::ProcessEvent>> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Pid& pid : std::exchange(ended_unaccepted_, {})) {
      if (launched_.contains(pid)) bridge_.OnNeverConnected(pid);  // ignored if it connected
    }
    events = Collect();
  }
  Deliver(events);
}

std::vector<std::pair<uint64_t, pb::ProcessEvent>> NodeAgent::Collect() {
  std::vector<std::pair<uint64_t, pb::ProcessEvent>> events;
  for (pb::ProcessEvent& event : collector_.events) {
    auto it = launched_.find(*FromProto(event.pid()));
    events.emplace_back(it == launched_.end() ? 0 : it->second.deployment, std::move(event));
  }
  collector_.events.clear();
  for (const Pid& pid : bridge_.TakeExited()) {
    auto it = launched_.find(pid);
    if (it != launched_.end() && it->second.pidfd >= 0) close(it->second.pidfd);
    launched_.erase(pid);
    bridge_.Remove(pid);
  }
  return events;
}

void NodeAgent::Deliver(const std::vector<std::pair<uint64_t, pb::ProcessEvent>>& events) {
  std::set<uint64_t> exits;
  for (const auto& [deployment, event] : events) {
    callbacks_.on_event(deployment, event);
    if (!event.has_exit()) continue;
    // This node knows first: its processes that watch this one hear it now.
    pb::ProcessGone gone;
    *gone.mutable_pid() = event.pid();
    *gone.mutable_exit() = event.exit();
    Tell(gone_.Gone(deployment, gone));
    exits.insert(deployment);
  }
  DropEnded(exits);
}

void NodeAgent::Collector::Output(const Pid& pid, int fd, absl::string_view data) {
  pb::ProcessEvent& event = events.emplace_back();
  *event.mutable_pid() = ToProto(pid);
  event.mutable_output()->set_fd(fd);
  event.mutable_output()->set_data(std::string(data));
}

void NodeAgent::Collector::Eof(const Pid& pid, int fd) {
  pb::ProcessEvent& event = events.emplace_back();
  *event.mutable_pid() = ToProto(pid);
  event.mutable_output()->set_fd(fd);
  event.mutable_output()->set_eof(true);
}

void NodeAgent::Collector::Exit(const Pid& pid, const pb::ExitEvent& exit) {
  pb::ProcessEvent& event = events.emplace_back();
  *event.mutable_pid() = ToProto(pid);
  *event.mutable_exit() = exit;
}

}  // namespace constellation::daemon
