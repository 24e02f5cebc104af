#include "lib/process/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/core/pid.h"
#include "lib/process/local_socket.h"
#include "lib/process/packet_queue.h"
#include "lib/process/proto_convert.h"

namespace constellation::internal {
namespace {

class Monitor {
 public:
  Monitor(const MonitorFds& fds, MonitorLimits limits, const Pid& pid)
      : limits_(std::move(limits)),
        child_(fds.child),
        pipes_{fds.stdout_fd, fds.stderr_fd},
        control_fd_(fds.control_fd),
        bridge_fd_(fds.bridge_fd),
        pid_(ToProto(pid)) {}

  void Run();

 private:
  // Bytes queued for the bridge past which the child's pipes and packets are
  // not read: the child then waits on its own writes (back-pressure on its
  // output). The bridge reads every monitor, so the queue drains.
  static constexpr size_t kBridgeHighWater = 256 << 10;
  // Bytes queued for the child past which the bridge is not read. A child
  // that reads is never this far behind (a verdict per watched pid).
  static constexpr size_t kChildHighWater = 8 << 20;
  // The most a pipe can hold (fs.pipe-max-size's default): what the child
  // wrote before a packet is forwarded before it, however full the queue.
  static constexpr size_t kPipeMax = 1 << 20;

  // Polls until something is ready and handles it; false if poll failed
  // (other than by a signal), which no later turn would mend.
  bool Turn(int pidfd, bool* child_exited);
  // Forwards pipe i (fd i+1) until it is empty or `until` bytes are queued
  // for the bridge; false once it is closed.
  bool Drain(int i, size_t until);
  // Forwards what the child wrote, then relays its packets, while the
  // bridge's queue has room (`all`: until none is left); false at EOF.
  bool RelayControl(bool all);
  // Hands packets from the bridge (spawn replies, verdicts) to the child,
  // while its queue has room (`all`: until none is left).
  void RelayReplies(bool all);
  void FlushToChild();
  void ToBridge(const pb::LocalMessage& message);
  void FlushToBridge();
  // After the exit event: sends what is queued for the bridge, reading (and
  // dropping) what it still sends so that it never stops reading this one.
  void FinishSending();
  void Send(pb::ProcessEvent&& event);
  void SendEof(int i);
  pb::ExitEvent WaitExit();

  MonitorLimits limits_;
  pid_t child_;
  int pipes_[2];
  int control_fd_;
  int bridge_fd_;
  pb::Pid pid_;
  bool bridge_gone_ = false;
  PacketQueue to_bridge_;  // every fd is non-blocking: nothing here waits on a write
  PacketQueue to_child_;
  std::optional<pb::Undelivered> undelivered_;  // the child's exit flush left data undelivered
};

void Monitor::Run() {
  for (int fd : {pipes_[0], pipes_[1], control_fd_, bridge_fd_}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child_, 0));
  // Without a pidfd (an old kernel, no fd to spare) the end of the pipes is
  // the sign: the loop goes on until both are closed, then waits for it.
  bool child_exited = false;
  while ((pipes_[0] >= 0 || pipes_[1] >= 0 || (pidfd >= 0 && !child_exited)) && !bridge_gone_) {
    if (!Turn(pidfd, &child_exited)) break;
    if (child_exited) {
      // The child is gone: everything it wrote is queued. Relay its last
      // packets, then the rest of its output; what descendants still write
      // to the pipes is not its own.
      if (control_fd_ >= 0) RelayControl(/*all=*/true);
      for (int i = 0; i < 2; ++i) {
        if (pipes_[i] >= 0 && !Drain(i, to_bridge_.bytes() + kPipeMax)) SendEof(i);
        if (pipes_[i] >= 0) SendEof(i);
      }
    }
  }
  if (control_fd_ >= 0 && !bridge_gone_) RelayControl(/*all=*/true);  // its last packets (no pidfd: pipes closed first)
  if (bridge_gone_) kill(child_, SIGKILL);
  pb::ExitEvent exit = WaitExit();
  if (limits_.leaf.OomKilled() && exit.signal() == SIGKILL) {
    exit.set_memory_exceeded(true);
    exit.set_error("exceeded its memory limit of " + format_mem(limits_.resources.mem));
  }
  if (undelivered_ && exit.status_case() == pb::ExitEvent::kCode && exit.code() == 0) {
    // It exited "successfully" with channel data it could not deliver
    // (its exit flush said which, on stderr): that is a failure.
    exit.set_code(kUndeliveredExitCode);
    exit.set_error(absl::StrCat("exited with ", undelivered_->bytes(), " bytes of channel data undelivered to ",
                                undelivered_->peers(), " process(es)"));
  }
  limits_.leaf.Remove();
  if (bridge_gone_) RemoveCgroupBaseIfUnused(limits_.base);
  if (pidfd >= 0) close(pidfd);
  if (control_fd_ >= 0) close(control_fd_);
  control_fd_ = -1;
  to_child_.Clear();
  pb::ProcessEvent event;
  *event.mutable_exit() = exit;
  Send(std::move(event));
  FinishSending();
}

bool Monitor::Turn(int pidfd, bool* child_exited) {
  const bool room = to_bridge_.bytes() < kBridgeHighWater;
  pollfd fds[5];
  int n = 0;
  for (int fd : pipes_) {
    if (fd >= 0 && room) fds[n++] = {fd, POLLIN, 0};
  }
  if (control_fd_ >= 0) {
    short events = static_cast<short>((room ? POLLIN : 0) | (to_child_.empty() ? 0 : POLLOUT));
    fds[n++] = {control_fd_, events, 0};  // with no events, still told of a hang-up
  }
  if (pidfd >= 0 && !*child_exited) fds[n++] = {pidfd, POLLIN, 0};
  short bridge_events =
      static_cast<short>((to_child_.bytes() < kChildHighWater ? POLLIN : 0) | (to_bridge_.empty() ? 0 : POLLOUT));
  fds[n++] = {bridge_fd_, bridge_events, 0};  // replies for the child, or the bridge is gone
  if (poll(fds, n, -1) < 0) return errno == EINTR;
  for (int i = 0; i < n; ++i) {
    const short revents = fds[i].revents;
    if (revents == 0) continue;
    const bool hung_up = revents & (POLLHUP | POLLERR);
    if (fds[i].fd == bridge_fd_) {
      if (revents & POLLOUT) FlushToBridge();
      if (revents & ~POLLOUT) RelayReplies(/*all=*/hung_up);
    } else if (fds[i].fd == pidfd) {
      *child_exited = true;
    } else if (fds[i].fd == control_fd_) {
      if (revents & POLLOUT) FlushToChild();
      if ((revents & ~POLLOUT) && !RelayControl(/*all=*/hung_up)) {
        close(control_fd_);
        control_fd_ = -1;
        to_child_.Clear();
      }
    } else {
      // The pipe may have been drained and closed already in this round.
      for (int which = 0; which < 2; ++which) {
        if (fds[i].fd == pipes_[which] && !Drain(which, kBridgeHighWater)) SendEof(which);
      }
    }
  }
  return true;
}

bool Monitor::RelayControl(bool all) {
  while (!bridge_gone_ && (all || to_bridge_.bytes() < kBridgeHighWater)) {
    pb::LocalMessage message;
    absl::StatusOr<bool> got = ReceiveLocal(control_fd_, &message);
    if (!got.ok() && absl::IsUnavailable(got.status())) return true;  // drained
    if (!got.ok() || !*got) return false;
    if (message.has_undelivered()) {  // for the monitor itself: see WaitExit
      undelivered_ = message.undelivered();
      continue;
    }
    // Output written before the packet was sent goes first.
    for (int i = 0; i < 2; ++i) {
      if (pipes_[i] >= 0 && !Drain(i, to_bridge_.bytes() + kPipeMax)) SendEof(i);
    }
    ToBridge(message);
  }
  return !bridge_gone_;
}

void Monitor::RelayReplies(bool all) {
  while (all || to_child_.bytes() < kChildHighWater) {
    pb::LocalMessage message;
    absl::StatusOr<bool> got = ReceiveLocal(bridge_fd_, &message, /*dont_wait=*/true);
    if (!got.ok() && absl::IsUnavailable(got.status())) break;
    if (!got.ok() || !*got) {
      bridge_gone_ = true;
      return;
    }
    if (control_fd_ >= 0) to_child_.Push(message).IgnoreError();  // it fit one packet already
  }
  FlushToChild();
}

void Monitor::FlushToChild() {
  if (control_fd_ < 0 || to_child_.empty()) return;
  // Broken: the child closed its end; reading it says so.
  to_child_.Flush(control_fd_).IgnoreError();
}

void Monitor::ToBridge(const pb::LocalMessage& message) {
  if (bridge_gone_) return;
  if (!to_bridge_.Send(bridge_fd_, message).ok()) bridge_gone_ = true;
}

void Monitor::FlushToBridge() {
  if (!bridge_gone_ && !to_bridge_.Flush(bridge_fd_).ok()) bridge_gone_ = true;
}

void Monitor::FinishSending() {
  while (!bridge_gone_ && !to_bridge_.empty()) {
    pollfd p{bridge_fd_, POLLIN | POLLOUT, 0};
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p.revents & POLLOUT) FlushToBridge();
    if (p.revents & ~POLLOUT) RelayReplies(/*all=*/true);  // nobody to hand them to: dropped
  }
}

bool Monitor::Drain(int i, size_t until) {
  char buf[kMaxOutputChunk];
  while (to_bridge_.bytes() < until) {
    ssize_t n = read(pipes_[i], buf, sizeof(buf));
    if (n > 0) {
      pb::ProcessEvent event;
      event.mutable_output()->set_fd(i + 1);
      event.mutable_output()->set_data(buf, n);
      Send(std::move(event));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

void Monitor::SendEof(int i) {
  close(pipes_[i]);
  pipes_[i] = -1;
  pb::ProcessEvent event;
  event.mutable_output()->set_fd(i + 1);
  event.mutable_output()->set_eof(true);
  Send(std::move(event));
}

void Monitor::Send(pb::ProcessEvent&& event) {
  if (bridge_gone_) return;
  *event.mutable_pid() = pid_;
  pb::LocalMessage message;
  *message.mutable_event() = std::move(event);
  ToBridge(message);
}

pb::ExitEvent Monitor::WaitExit() {
  int status = 0;
  rusage usage{};
  pid_t r;
  do {
    r = wait4(child_, &status, 0, &usage);
  } while (r < 0 && errno == EINTR);
  pb::ExitEvent exit;
  if (r > 0) {
    exit.set_peak_mem(static_cast<uint64_t>(usage.ru_maxrss) * 1024);
    exit.set_cpu_time_us(static_cast<uint64_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
                         usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  }
  if (r < 0) {
    exit.set_signal(SIGKILL);
    exit.set_error("lost track of the process");
  } else if (WIFSIGNALED(status)) {
    exit.set_signal(WTERMSIG(status));
  } else {
    exit.set_code(WEXITSTATUS(status));
  }
  return exit;
}

}  // namespace

void RunMonitor(const MonitorFds& fds, MonitorLimits limits, const Pid& pid) {
  Monitor(fds, std::move(limits), pid).Run();
}

}  // namespace constellation::internal
