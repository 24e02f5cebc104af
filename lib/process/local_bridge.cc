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
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/process/bridge.h"
#include "lib/process/cgroup.h"
#include "lib/process/local_socket.h"
#include "lib/process/request_chunks.h"

namespace constellation {
namespace {

// Packets read from one connection per wake-up, so one chatty process cannot
// starve the others.
constexpr int kPacketsPerTurn = 64;
// How long terminating waits for killed processes to close their connections.
constexpr auto kKillGrace = std::chrono::seconds(3);
// How long spawn() calls may wait with no exit before the bridge warns.
constexpr auto kStallWarning = std::chrono::seconds(10);

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

class LocalBridgeLoop {
 public:
  LocalBridgeLoop(int listen_fd, OutputFormatter* out, std::unique_ptr<LocalSpawner> spawner, pb::CgroupBase cgroups)
      : listen_fd_(listen_fd), bridge_(out), out_(out), spawner_(std::move(spawner)), cgroups_(std::move(cgroups)) {}

  int Run(int root_fd, const Pid& root);

 private:
  void Accept();
  void ReadConnection(int fd);
  void CloseConnection(int fd);
  // Spawn requests (whole, or in chunks) go to the spawner, not the Bridge.
  enum class Handled { kNo, kYes, kClosed };
  Handled HandleSpawnRequest(int fd, const pb::LocalMessage& message);
  void FeedExits();
  void Reply(int fd, const pb::SpawnReply& reply);
  void Settle();
  // spawn() calls waiting long with nothing exiting: say so once per stall.
  void WarnIfStalled();
  void WatchAnnounced();
  void CheckNeverConnected(int pidfd);
  void Terminate(int signal);
  void ReapChildren();
  void WaitForChildren();
  int HandleSignals();
  std::vector<pollfd> PollSet() const;

  int listen_fd_;
  int signal_fd_ = -1;
  Bridge bridge_;
  OutputFormatter* out_;
  std::unique_ptr<LocalSpawner> spawner_;
  std::map<int, RequestChunks> partial_requests_;  // chunked spawn requests, per connection
  pb::CgroupBase cgroups_;
  std::chrono::steady_clock::time_point last_progress_ = std::chrono::steady_clock::now();
  bool warned_stall_ = false;
  std::vector<int> conns_;
  std::map<int, Pid> pidfds_;  // processes announced but not yet connected
  int terminating_signal_ = 0;
  std::chrono::steady_clock::time_point kill_deadline_;
};

int LocalBridgeLoop::Run(int root_fd, const Pid& root) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // the terminal went away: stop like SIGTERM
  sigaddset(&signals, SIGCHLD);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  signal_fd_ = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  signal(SIGPIPE, SIG_IGN);
  // Orphaned monitors (their spawner exited first) are reparented here and reaped.
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  bridge_.AddRoot(root);
  fcntl(root_fd, F_SETFL, fcntl(root_fd, F_GETFL) | O_NONBLOCK);  // reads drain until EAGAIN
  conns_.push_back(root_fd);
  while (!bridge_.Done()) {
    if (terminating_signal_ != 0 && (conns_.empty() || std::chrono::steady_clock::now() > kill_deadline_)) break;
    std::vector<pollfd> fds = PollSet();
    int timeout_ms = terminating_signal_ != 0 ? 100 : spawner_->waiting() > 0 ? 1000 : -1;
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) break;
    WarnIfStalled();
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == signal_fd_) {
        HandleSignals();
      } else if (p.fd == listen_fd_) {
        Accept();
      } else if (pidfds_.contains(p.fd)) {
        CheckNeverConnected(p.fd);
      } else {
        ReadConnection(p.fd);
      }
    }
    for (int fd : bridge_.TakeReleased()) ReadConnection(fd);
    Settle();
    WatchAnnounced();
    out_->Flush();
  }
  out_->Flush();
  for (int fd : conns_) close(fd);
  for (const auto& [fd, pid] : pidfds_) close(fd);
  close(listen_fd_);
  if (terminating_signal_ != 0) {
    WaitForChildren();
  } else {
    ReapChildren();
  }
  return terminating_signal_ != 0 ? 128 + terminating_signal_ : bridge_.exit_code();
}

std::vector<pollfd> LocalBridgeLoop::PollSet() const {
  std::vector<pollfd> fds;
  fds.push_back({signal_fd_, POLLIN, 0});
  fds.push_back({listen_fd_, POLLIN, 0});
  for (int fd : conns_) {
    if (!bridge_.IsHeld(fd)) fds.push_back({fd, POLLIN, 0});
  }
  for (const auto& [fd, pid] : pidfds_) fds.push_back({fd, POLLIN, 0});
  return fds;
}

void LocalBridgeLoop::Accept() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    // The socket's directory is 0700 already; root (or a CAP_DAC_OVERRIDE
    // process) can still reach it, and may not spawn processes as this user.
    absl::StatusOr<PeerCredentials> peer = PeerOf(fd);
    if (!peer.ok() || peer->uid != geteuid()) {
      fprintf(stderr, "constellation bridge: refusing a connection from uid %d (not this program's user)\n",
              peer.ok() ? static_cast<int>(peer->uid) : -1);
      close(fd);
      continue;
    }
    conns_.push_back(fd);
    ReadConnection(fd);
  }
}

void LocalBridgeLoop::ReadConnection(int fd) {
  for (int i = 0; i < kPacketsPerTurn && !bridge_.IsHeld(fd); ++i) {
    pb::LocalMessage message;
    absl::StatusOr<bool> got = ReceiveLocal(fd, &message);
    if (!got.ok() && absl::IsUnavailable(got.status())) return;  // drained
    if (!got.ok() || !*got) {
      if (!got.ok())
        fprintf(stderr, "constellation bridge: dropping a connection: %s\n", got.status().ToString().c_str());
      CloseConnection(fd);
      return;
    }
    Handled handled = HandleSpawnRequest(fd, message);
    if (handled == Handled::kClosed) return;
    if (handled == Handled::kYes) continue;
    absl::Status status = bridge_.OnMessage(fd, message);
    if (!status.ok()) {
      fprintf(stderr, "constellation bridge: dropping a connection: %s\n", status.ToString().c_str());
      CloseConnection(fd);
      return;
    }
  }
}

LocalBridgeLoop::Handled LocalBridgeLoop::HandleSpawnRequest(int fd, const pb::LocalMessage& message) {
  if (!message.has_spawn_request() && !message.has_spawn_request_chunk()) return Handled::kNo;
  std::optional<Pid> requester = bridge_.PidOf(fd);
  if (!requester) return Handled::kNo;  // before its hello: the Bridge rejects it
  FeedExits();                          // room freed by exits already read counts for this request
  pb::SpawnRequest whole;
  if (message.has_spawn_request()) {
    whole = message.spawn_request();
  } else {
    const pb::RequestChunk& chunk = message.spawn_request_chunk();
    RequestChunks::State state = partial_requests_[fd].Add(chunk, &whole);
    if (state == RequestChunks::State::kPartial) return Handled::kYes;
    partial_requests_.erase(fd);
    if (state == RequestChunks::State::kTooBig) {
      Reply(fd, RequestChunks::TooBigReply(chunk));
      return Handled::kYes;
    }
    if (state == RequestChunks::State::kMalformed) {
      fprintf(stderr, "constellation bridge: dropping a connection: malformed spawn request\n");
      CloseConnection(fd);
      return Handled::kClosed;
    }
  }
  spawner_->Request(*requester, whole);
  Settle();
  return Handled::kYes;
}

void LocalBridgeLoop::FeedExits() {
  for (const Pid& pid : bridge_.TakeExited()) {
    spawner_->Exited(pid);
    // A monitor that died could not remove its process's cgroup (a no-op otherwise).
    RemoveCgroupLeaf(cgroups_, absl::StrCat("p", bridge_.MonitorOsPid(pid)));
    last_progress_ = std::chrono::steady_clock::now();
    warned_stall_ = false;
  }
}

// Replies go to a monitor that reads promptly; a full socket gets a bounded wait.
void LocalBridgeLoop::Reply(int fd, const pb::SpawnReply& spawn_reply) {
  pb::LocalMessage reply;
  *reply.mutable_spawn_reply() = spawn_reply;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (SendLocal(fd, reply).ok()) return;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;  // broken: its next read says so
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, 100);
  }
  fprintf(stderr, "constellation bridge: a process does not read its spawn replies\n");
}

// Hands exits to the spawner, and what it decided to the program: a started
// child's spawn line first, then the reply to the process that asked.
void LocalBridgeLoop::Settle() {
  FeedExits();
  for (LocalSpawner::Outcome& outcome : spawner_->TakeOutcomes()) {
    if (outcome.launched) bridge_.Spawned(outcome.requester, outcome.launched->pid, outcome.launched->monitor_os_pid);
    int fd = -1;
    for (int conn : conns_) {
      if (bridge_.PidOf(conn) == outcome.requester) fd = conn;
    }
    if (fd < 0) continue;  // it is gone; its child runs on
    Reply(fd, outcome.reply);
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

void LocalBridgeLoop::CloseConnection(int fd) {
  partial_requests_.erase(fd);
  bridge_.OnClose(fd);
  std::erase(conns_, fd);
  close(fd);
}

void LocalBridgeLoop::WatchAnnounced() {
  for (const auto& [pid, os_pid] : bridge_.TakeAnnounced()) {
    if (bridge_.HasConnected(pid) || os_pid <= 0) continue;
    int pidfd = PidfdOpen(os_pid);
    if (pidfd < 0) {
      // Already gone and reaped: whatever it sent is queued by now.
      Accept();
      if (!bridge_.HasConnected(pid)) bridge_.OnNeverConnected(pid);
      continue;
    }
    pidfds_[pidfd] = pid;
  }
}

void LocalBridgeLoop::CheckNeverConnected(int pidfd) {
  Pid pid = pidfds_[pidfd];
  pidfds_.erase(pidfd);
  close(pidfd);
  // The process has ended; its connect and hello, if any, are queued already.
  Accept();
  for (int fd : std::vector<int>(conns_)) ReadConnection(fd);
  if (!bridge_.HasConnected(pid)) bridge_.OnNeverConnected(pid);
}

int LocalBridgeLoop::HandleSignals() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
    if (info.ssi_signo == SIGCHLD) {
      ReapChildren();
    } else if (terminating_signal_ == 0) {
      Terminate(static_cast<int>(info.ssi_signo));
    }
  }
  return 0;
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
          : MakeHumanFormatter(stdout, stderr, isatty(STDOUT_FILENO) == 1, VerboseFromEnv(getenv(kVerboseEnv)));
  LocalBridgeLoop loop(listen_fd, out.get(), std::move(spawner), cgroups);
  return loop.Run(root_fd, root);
}

}  // namespace constellation
