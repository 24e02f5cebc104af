#include "lib/process/bridge.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "lib/process/proto_convert.h"

namespace constellation {

void Bridge::AddRoot(const Pid& root) {
  processes_[root] = Process{};
  ++live_;
}

absl::Status Bridge::OnMessage(int conn, const pb::LocalMessage& message) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) {
    if (message.kind_case() != pb::LocalMessage::kHello) {
      return absl::InvalidArgumentError("first packet on a bridge connection is not a hello");
    }
    return OnHello(conn, message.hello());
  }
  const Pid speaker = it->second;
  Process& process = processes_[speaker];
  switch (message.kind_case()) {
    case pb::LocalMessage::kChildStarted:
      process.os_pid = message.child_started().os_pid();
      return absl::OkStatus();
    case pb::LocalMessage::kEvent:
      return OnEvent(speaker, message.event());
    case pb::LocalMessage::kWatch:
      return absl::OkStatus();  // answered by whoever runs the Bridge (it knows the connections)
    default:
      return absl::InvalidArgumentError("unexpected packet on a bridge connection");
  }
}

absl::Status Bridge::OnHello(int conn, const pb::Hello& hello) {
  absl::StatusOr<Pid> pid = FromProto(hello.pid());
  if (!pid.ok()) return pid.status();
  if (waiting_.contains(*pid)) return absl::AlreadyExistsError("second connection for one process");
  auto it = processes_.find(*pid);
  if (it != processes_.end() && it->second.conn >= 0) {
    return absl::AlreadyExistsError("second connection for one process");
  }
  conns_[conn] = *pid;
  if (it == processes_.end()) {
    // Its parent's spawn line has not been read yet: hold the connection.
    waiting_[*pid] = conn;
    held_.insert(conn);
    return absl::OkStatus();
  }
  it->second.conn = conn;
  if (it->second.monitor_os_pid == 0) it->second.monitor_os_pid = hello.monitor_os_pid();
  return absl::OkStatus();
}

absl::Status Bridge::OnEvent(const Pid& speaker, const pb::ProcessEvent& event) {
  absl::StatusOr<Pid> pid = FromProto(event.pid());
  if (!pid.ok()) return pid.status();
  if (*pid != speaker) return absl::PermissionDeniedError("a process may only report its own events");
  switch (event.event_case()) {
    case pb::ProcessEvent::kSpawn: {
      absl::StatusOr<Pid> child = FromProto(event.spawn().child());
      if (!child.ok()) return child.status();
      if (processes_.contains(*child)) return absl::AlreadyExistsError("spawned a pid twice");
      Spawned(speaker, *child, event.spawn().os_pid());
      return absl::OkStatus();
    }
    case pb::ProcessEvent::kOutput: {
      const pb::OutputEvent& output = event.output();
      if (output.fd() != 1 && output.fd() != 2) return absl::InvalidArgumentError("output on an fd other than 1, 2");
      if (output.eof()) {
        out_->Eof(speaker, output.fd());
      } else {
        out_->Output(speaker, output.fd(), output.data());
      }
      return absl::OkStatus();
    }
    case pb::ProcessEvent::kExit:
      Exited(speaker, event.exit());
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("empty process event");
  }
}

void Bridge::Spawned(const Pid& parent, const Pid& child, pid_t monitor_os_pid) {
  out_->Spawn(parent, child);
  announced_.emplace_back(child, monitor_os_pid);
  Announce(child, monitor_os_pid);
}

void Bridge::Announce(const Pid& pid, pid_t monitor_os_pid) {
  auto [it, added] = processes_.try_emplace(pid);
  if (!added) return;  // known already
  Process& process = it->second;
  process.monitor_os_pid = monitor_os_pid;
  ++live_;
  if (auto waiting = waiting_.find(pid); waiting != waiting_.end()) {
    process.conn = waiting->second;
    held_.erase(waiting->second);
    released_.push_back(waiting->second);
    waiting_.erase(waiting);
  }
}

std::optional<Pid> Bridge::PidOf(int conn) const {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return std::nullopt;
  return it->second;
}

void Bridge::SetMonitor(const Pid& pid, pid_t monitor_os_pid) {
  auto it = processes_.find(pid);
  if (it != processes_.end()) it->second.monitor_os_pid = monitor_os_pid;
}

void Bridge::Remove(const Pid& pid) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) return;
  if (!it->second.exited) --live_;
  if (it->second.conn >= 0) {
    conns_.erase(it->second.conn);
    held_.erase(it->second.conn);
  }
  processes_.erase(it);
}

std::optional<int> Bridge::ConnOf(const Pid& pid) const {
  auto it = processes_.find(pid);
  if (it == processes_.end() || it->second.conn < 0) return std::nullopt;
  return it->second.conn;
}

pid_t Bridge::MonitorOsPid(const Pid& pid) const {
  auto it = processes_.find(pid);
  return it == processes_.end() ? 0 : it->second.monitor_os_pid;
}

pid_t Bridge::OsPid(const Pid& pid) const {
  auto it = processes_.find(pid);
  return it == processes_.end() ? 0 : it->second.os_pid;
}

bool Bridge::Knows(const Pid& pid) const { return processes_.contains(pid) || waiting_.contains(pid); }

const pb::ExitEvent* Bridge::ExitOf(const Pid& pid) const {
  auto it = processes_.find(pid);
  if (it == processes_.end() || !it->second.exited) return nullptr;
  return &it->second.exit;
}

std::vector<Pid> Bridge::TakeExited() { return std::exchange(exited_, {}); }

void Bridge::Exited(const Pid& pid, const pb::ExitEvent& exit) {
  Process& process = processes_[pid];
  if (process.exited) return;
  process.exited = true;
  process.exit = exit;
  --live_;
  exited_.push_back(pid);
  out_->Exit(pid, exit);
  int code = ExitCodeOf(exit);
  if (exit_code_ == 0 && code != 0) exit_code_ = code;
}

void Bridge::OnClose(int conn) {
  held_.erase(conn);
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  Pid pid = it->second;
  conns_.erase(it);
  if (waiting_.erase(pid) > 0) return;  // never announced: an orphan
  if (!processes_[pid].exited) {
    pb::ExitEvent exit;
    exit.set_signal(SIGKILL);
    exit.set_error("its monitor died");
    Exited(pid, exit);
  }
}

void Bridge::OnNeverConnected(const Pid& pid) {
  auto it = processes_.find(pid);
  if (it == processes_.end() || it->second.conn >= 0 || it->second.exited) return;
  pb::ExitEvent exit;
  exit.set_code(127);
  exit.set_error("ended before init()");
  Exited(pid, exit);
}

std::vector<int> Bridge::TakeReleased() { return std::exchange(released_, {}); }

std::vector<std::pair<Pid, pid_t>> Bridge::TakeAnnounced() { return std::exchange(announced_, {}); }

bool Bridge::HasConnected(const Pid& pid) const {
  auto it = processes_.find(pid);
  return it != processes_.end() && (it->second.conn >= 0 || it->second.exited);
}

std::vector<pid_t> Bridge::LiveOsPids() const {
  std::vector<pid_t> pids;
  for (const auto& [pid, process] : processes_) {
    if (process.exited) continue;
    if (process.monitor_os_pid > 0) pids.push_back(process.monitor_os_pid);
    if (process.os_pid > 0) pids.push_back(process.os_pid);
  }
  return pids;
}

}  // namespace constellation
