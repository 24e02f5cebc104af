#include "lib/process/local_bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/process/bridge.h"
#include "lib/process/cgroup.h"
#include "lib/process/exit_watches.h"
#include "lib/process/local_socket.h"
#include "lib/process/process_server.h"
#include "lib/process/proto_convert.h"

namespace constellation::internal {
namespace {

// At most this many pids per watch request (local.proto).
constexpr int kMaxWatchPids = 1024;
// How long terminating waits for killed processes to close their connections.
constexpr auto kKillGrace = std::chrono::seconds(3);
// How long spawn() calls may wait with no exit before the bridge warns.
constexpr auto kStallWarning = std::chrono::seconds(10);

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// The bridge's policy on ProcessServer's loop: the Bridge decides what the
// packets mean and which connections are held, the LocalSpawner answers
// spawn requests.
class LocalBridgeLoop final : public ProcessServer::Handler {
 public:
  LocalBridgeLoop(OutputFormatter* out, std::unique_ptr<LocalSpawner> spawner, pb::CgroupBase cgroups)
      : bridge_(out), out_(out), spawner_(std::move(spawner)), cgroups_(std::move(cgroups)) {}

  int Run(int listen_fd, int root_fd, const Pid& root);

  // ProcessServer::Handler
  bool Admit(int conn, const PeerCredentials& peer) override;
  bool IsHeld(int conn) const override { return bridge_.IsHeld(conn); }
  bool Identified(int conn) const override { return bridge_.PidOf(conn).has_value(); }
  absl::Status OnMessage(int conn, const pb::LocalMessage& message) override {
    if (message.has_watch() && bridge_.PidOf(conn)) return OnWatch(conn, message.watch());
    return bridge_.OnMessage(conn, message);
  }
  void OnSpawnRequest(int conn, const pb::SpawnRequest& request) override;
  void OnClose(int conn) override {
    watches_.Forget(conn);
    bridge_.OnClose(conn);
  }

 private:
  // A process watches processes (its channel peers): each is answered once,
  // now if it is gone or unknown, else when it exits (FeedExits).
  absl::Status OnWatch(int conn, const pb::WatchRequest& watch);
  void SendGone(int conn, const Pid& pid, const pb::ExitEvent* exit);
  void FeedExits();
  void Settle();
  // spawn() calls waiting long with nothing exiting: say so once per stall.
  void WarnIfStalled();
  void WatchAnnounced();
  void CheckNeverConnected(int pidfd);
  void DecideEndedUnaccepted();
  void Terminate(int signal);
  void ReapChildren();
  void WaitForChildren();
  void HandleSignals();

  int signal_fd_ = -1;
  Bridge bridge_;
  ExitWatches watches_;
  OutputFormatter* out_;
  std::unique_ptr<LocalSpawner> spawner_;
  std::unique_ptr<ProcessServer> server_;
  pb::CgroupBase cgroups_;
  std::chrono::steady_clock::time_point last_progress_ = std::chrono::steady_clock::now();
  bool warned_stall_ = false;
  std::map<int, Pid> pidfds_;  // processes announced but not yet connected
  // Announced, not yet connected, and no pidfd for want of fds: retried each
  // turn (and at least every kRetryUnwatchedMs) until they connect or a
  // pidfd says they are gone. Out of fds is no sign that a process ended.
  std::map<Pid, pid_t> unwatched_;
  // Ended before they connected, as far as the bridge could accept: a
  // connection of theirs may still wait in the listen queue (the bridge was
  // out of fds). Decided once an Accept() leaves none queued.
  std::set<Pid> ended_unaccepted_;
  static constexpr int kRetryUnwatchedMs = 100;
  int terminating_signal_ = 0;
  std::chrono::steady_clock::time_point kill_deadline_;
};

int LocalBridgeLoop::Run(int listen_fd, int root_fd, const Pid& root) {
  absl::StatusOr<std::unique_ptr<ProcessServer>> server =
      ProcessServer::Create(listen_fd, this, "constellation bridge");
  if (!server.ok()) {
    fprintf(stderr, "constellation bridge: %s\n", server.status().ToString().c_str());
    return 1;
  }
  server_ = *std::move(server);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // the terminal went away: stop like SIGTERM
  sigaddset(&signals, SIGCHLD);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  signal_fd_ = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  server_->Watch(signal_fd_, [this] { HandleSignals(); });
  signal(SIGPIPE, SIG_IGN);
  // Orphaned monitors (their spawner exited first) are reparented here and reaped.
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  bridge_.AddRoot(root);
  server_->AddConnection(root_fd);
  while (!bridge_.Done()) {
    if (terminating_signal_ != 0 && (server_->size() == 0 || std::chrono::steady_clock::now() > kill_deadline_)) break;
    server_->Turn(bridge_.HasPending()                                                            ? 0
                  : terminating_signal_ != 0 || !unwatched_.empty() || !ended_unaccepted_.empty() ? kRetryUnwatchedMs
                  : spawner_->waiting() > 0                                                       ? 1000
                                                                                                  : -1);
    WarnIfStalled();
    for (int conn : bridge_.TakeReleased()) server_->Read(conn);
    Settle();
    WatchAnnounced();
    out_->Flush();
  }
  out_->Flush();
  server_.reset();   // closes the connections and the listener
  spawner_.reset();  // ends the zygote, if any, before children are reaped
  for (const auto& [fd, pid] : pidfds_) close(fd);
  if (terminating_signal_ != 0) {
    WaitForChildren();
  } else {
    ReapChildren();
  }
  return terminating_signal_ != 0 ? 128 + terminating_signal_ : bridge_.exit_code();
}

bool LocalBridgeLoop::Admit(int, const PeerCredentials& peer) {
  // The socket's directory is 0700 already; root (or a CAP_DAC_OVERRIDE
  // process) can still reach it, and may not spawn processes as this user.
  if (peer.uid == geteuid()) return true;
  fprintf(stderr, "constellation bridge: refusing a connection from uid %d (not this program's user)\n",
          static_cast<int>(peer.uid));
  return false;
}

void LocalBridgeLoop::OnSpawnRequest(int conn, const pb::SpawnRequest& request) {
  FeedExits();  // room freed by exits already read counts for this request
  spawner_->Request(*bridge_.PidOf(conn), request);
  Settle();
}

absl::Status LocalBridgeLoop::OnWatch(int conn, const pb::WatchRequest& watch) {
  if (watch.pids_size() > kMaxWatchPids) return absl::InvalidArgumentError("a watch request of too many pids");
  for (const pb::Pid& proto : watch.pids()) {
    absl::StatusOr<Pid> pid = FromProto(proto);
    if (!pid.ok()) return pid.status();
    if (!bridge_.Knows(*pid) || bridge_.ExitOf(*pid) != nullptr) {
      SendGone(conn, *pid, bridge_.ExitOf(*pid));
      continue;
    }
    absl::Status added = watches_.Add(conn, *pid);
    if (!added.ok()) return added;
  }
  return absl::OkStatus();
}

void LocalBridgeLoop::SendGone(int conn, const Pid& pid, const pb::ExitEvent* exit) {
  pb::LocalMessage message;
  pb::ProcessGone* gone = message.mutable_gone();
  *gone->mutable_pid() = ToProto(pid);
  if (exit == nullptr) {
    gone->set_no_process(true);
  } else {
    *gone->mutable_exit() = *exit;
  }
  server_->Send(conn, message);
}

void LocalBridgeLoop::FeedExits() {
  for (const Pid& pid : bridge_.TakeExited()) {
    for (int conn : watches_.Take(pid)) SendGone(conn, pid, bridge_.ExitOf(pid));
    spawner_->Exited(pid);
    // A monitor that died could not remove its process's cgroup (a no-op otherwise).
    RemoveCgroupLeaf(cgroups_, absl::StrCat("p", bridge_.MonitorOsPid(pid)));
    last_progress_ = std::chrono::steady_clock::now();
    warned_stall_ = false;
  }
}

// Hands exits to the spawner, and what it decided to the program: a started
// child's spawn line first, then the reply to the process that asked.
void LocalBridgeLoop::Settle() {
  FeedExits();
  for (LocalSpawner::Outcome& outcome : spawner_->TakeOutcomes()) {
    if (outcome.launched) bridge_.Spawned(outcome.requester, outcome.launched->pid, outcome.launched->monitor_os_pid);
    std::optional<int> conn = bridge_.ConnOf(outcome.requester);
    if (!conn) continue;  // it is gone; its child runs on
    server_->Reply(*conn, outcome.reply);
  }
}

void LocalBridgeLoop::WarnIfStalled() {
  if (spawner_->waiting() == 0) {
    last_progress_ = std::chrono::steady_clock::now();
    return;
  }
  if (warned_stall_ || std::chrono::steady_clock::now() - last_progress_ < kStallWarning) return;
  warned_stall_ = true;
  fprintf(stderr,
          "constellation: %zu spawn() call(s) have waited %lld s for room while no process exited (capacity %s, "
          "%zu processes running); if the running ones wait for them, this will not end: raise "
          "CONSTELLATION_CAPACITY or ask for less\n",
          spawner_->waiting(), static_cast<long long>(kStallWarning.count()), to_string(spawner_->capacity()).c_str(),
          spawner_->running());
}

void LocalBridgeLoop::WatchAnnounced() {
  // A process that connected reports its own exit: its pidfd is not needed
  // (one fd per live process is what the bridge can afford under `ulimit -n`).
  for (auto it = pidfds_.begin(); it != pidfds_.end();) {
    if (!bridge_.HasConnected(it->second)) {
      ++it;
      continue;
    }
    server_->Unwatch(it->first);
    close(it->first);
    it = pidfds_.erase(it);
  }
  std::map<Pid, pid_t> to_watch = std::exchange(unwatched_, {});
  for (const auto& [pid, os_pid] : bridge_.TakeAnnounced()) to_watch[pid] = os_pid;
  for (const auto& [pid, os_pid] : to_watch) {
    if (bridge_.HasConnected(pid) || os_pid <= 0) continue;
    int pidfd = PidfdOpen(os_pid);
    if (pidfd >= 0) {
      pidfds_[pidfd] = pid;
      server_->Watch(pidfd, [this, pidfd] { CheckNeverConnected(pidfd); });
    } else if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
      unwatched_[pid] = os_pid;  // look again next turn
    } else {
      ended_unaccepted_.insert(pid);  // ESRCH: already gone and reaped
    }
  }
  DecideEndedUnaccepted();
}

void LocalBridgeLoop::DecideEndedUnaccepted() {
  if (ended_unaccepted_.empty()) return;
  // Whatever they sent before they ended is queued by now, if it could be
  // accepted: decide only once nothing waits in the listen queue.
  if (!server_->Accept()) return;
  server_->ReadAll();
  for (const Pid& pid : std::exchange(ended_unaccepted_, {})) {
    if (!bridge_.HasConnected(pid)) bridge_.OnNeverConnected(pid);
  }
}

void LocalBridgeLoop::CheckNeverConnected(int pidfd) {
  Pid pid = pidfds_[pidfd];
  pidfds_.erase(pidfd);
  server_->Unwatch(pidfd);
  close(pidfd);
  // The process has ended; its connect and hello, if any, are queued already.
  ended_unaccepted_.insert(pid);
  DecideEndedUnaccepted();
}

void LocalBridgeLoop::HandleSignals() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
    if (info.ssi_signo == SIGCHLD) {
      ReapChildren();
    } else if (terminating_signal_ == 0) {
      Terminate(static_cast<int>(info.ssi_signo));
    }
  }
}

void LocalBridgeLoop::Terminate(int signal) {
  terminating_signal_ = signal;
  kill_deadline_ = std::chrono::steady_clock::now() + kKillGrace;
  spawner_->Shutdown();  // nothing new starts; waiting spawn() calls fail
  Settle();
  for (pid_t os_pid : bridge_.LiveOsPids()) kill(os_pid, SIGKILL);
}

void LocalBridgeLoop::ReapChildren() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

// After killing everything: wait (boundedly) until every child is reaped, so
// that no process of the program outlives the bridge, zombies included.
void LocalBridgeLoop::WaitForChildren() {
  auto deadline = std::chrono::steady_clock::now() + kKillGrace;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t reaped = waitpid(-1, nullptr, WNOHANG);
    if (reaped < 0) return;  // ECHILD: none left
    if (reaped == 0) usleep(5000);
  }
}

}  // namespace

int RunLocalBridge(int listen_fd, int root_fd, const Pid& root, OutputFormat format,
                   std::unique_ptr<LocalSpawner> spawner, const pb::CgroupBase& cgroups) {
  std::unique_ptr<OutputFormatter> out =
      format == OutputFormat::kJson
          ? MakeJsonFormatter(stdout)
          : MakeHumanFormatter(stdout, stderr, UseColor(STDOUT_FILENO), VerboseFromEnv(getenv(kVerboseEnv)));
  LocalBridgeLoop loop(out.get(), std::move(spawner), cgroups);
  return loop.Run(listen_fd, root_fd, root);
}

}  // namespace constellation::internal
