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
#include "lib/process/proto_convert.h"

namespace constellation {
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
  // Reads what is available on pipe i (fd i+1); false once it is closed.
  bool Drain(int i);
  // Forwards what the child wrote, then relays its packets; false at EOF.
  bool RelayControl();
  // Hands packets from the bridge (spawn replies) to the child.
  void RelayReplies();
  void SendToChild(const pb::LocalMessage& message);
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
  std::optional<pb::Undelivered> undelivered_;  // the child's exit flush left data undelivered
};

void Monitor::Run() {
  for (int fd : {pipes_[0], pipes_[1], control_fd_}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child_, 0));
  bool child_exited = pidfd < 0;  // cannot watch it: fall back to pipe EOF, then waitpid
  while ((pipes_[0] >= 0 || pipes_[1] >= 0 || !child_exited) && !bridge_gone_) {
    pollfd fds[5];
    int n = 0;
    for (int fd : pipes_) {
      if (fd >= 0) fds[n++] = {fd, POLLIN, 0};
    }
    if (control_fd_ >= 0) fds[n++] = {control_fd_, POLLIN, 0};
    if (!child_exited) fds[n++] = {pidfd, POLLIN, 0};
    fds[n++] = {bridge_fd_, POLLIN, 0};  // replies for the child, or the bridge is gone
    if (poll(fds, n, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == bridge_fd_) {
        RelayReplies();
      } else if (fds[i].fd == pidfd) {
        child_exited = true;
      } else if (fds[i].fd == control_fd_) {
        if (!RelayControl()) {
          close(control_fd_);
          control_fd_ = -1;
        }
      } else {
        // The pipe may have been drained and closed already in this round.
        for (int which = 0; which < 2; ++which) {
          if (fds[i].fd == pipes_[which] && !Drain(which)) SendEof(which);
        }
      }
    }
    if (child_exited) {
      // The child is gone: everything it wrote is queued. Relay its last
      // packets, then the rest of its output; what descendants still write
      // to the pipes is not its own.
      if (control_fd_ >= 0) RelayControl();
      for (int i = 0; i < 2; ++i) {
        if (pipes_[i] >= 0 && !Drain(i)) SendEof(i);
        if (pipes_[i] >= 0) SendEof(i);
      }
    }
  }
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
  pb::ProcessEvent event;
  *event.mutable_exit() = exit;
  Send(std::move(event));
}

bool Monitor::RelayControl() {
  while (!bridge_gone_) {
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
      if (pipes_[i] >= 0 && !Drain(i)) SendEof(i);
    }
    if (!SendLocal(bridge_fd_, message).ok()) bridge_gone_ = true;
  }
  return false;
}

void Monitor::RelayReplies() {
  while (true) {
    pb::LocalMessage message;
    absl::StatusOr<bool> got = ReceiveLocal(bridge_fd_, &message, /*dont_wait=*/true);
    if (!got.ok() && absl::IsUnavailable(got.status())) return;
    if (!got.ok() || !*got) {
      bridge_gone_ = true;
      return;
    }
    if (control_fd_ >= 0) SendToChild(message);
  }
}

void Monitor::SendToChild(const pb::LocalMessage& message) {
  // control_fd_ is non-blocking; the child's data-plane loop reads it
  // promptly, so a full socket gets a bounded wait, not a dropped verdict.
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (SendLocal(control_fd_, message).ok()) return;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;  // the child is gone
    pollfd p{control_fd_, POLLOUT, 0};
    poll(&p, 1, 100);
  }
  fprintf(stderr, "constellation: monitor: the process does not read its monitor connection; a packet was dropped\n");
}

bool Monitor::Drain(int i) {
  char buf[kMaxOutputChunk];
  while (true) {
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
  if (!SendLocal(bridge_fd_, message).ok()) bridge_gone_ = true;
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

}  // namespace constellation
