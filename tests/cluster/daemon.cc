#include "tests/cluster/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/harness/cgroups.h"
#include "tests/harness/proc_fs.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {
namespace {

int ShellCode(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return info.si_status;
  return 128 + info.si_status;
}

}  // namespace

Daemon::Daemon(std::string name, std::vector<std::string> argv) : name_(std::move(name)) {
  signal(SIGPIPE, SIG_IGN);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << name_ << ": " << ErrnoText("pipe2");
    return;
  }
  absl::StatusOr<pid_t> pid = SpawnInGroup(argv, /*env=*/nullptr, /*stdin_fd=*/-1, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (!pid.ok()) {
    ADD_FAILURE() << name_ << ": " << pid.status();
    close(out[0]);
    close(err[0]);
    return;
  }
  pid_ = *pid;
  pidfd_ = PidfdOpen(pid_);
  if (pidfd_ < 0) ADD_FAILURE() << name_ << ": " << ErrnoText("pidfd_open");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  reader_ = std::thread([this, o = out[0], e = err[0]] { ReadLoop(o, e); });
}

Daemon::~Daemon() {
  Stop();
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (reader_.joinable()) reader_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (pidfd_ >= 0) close(pidfd_);
}

void Daemon::ReadLoop(int out_fd, int err_fd) {
  int fds[2] = {out_fd, err_fd};
  bool exit_seen = false;
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[4];
    int n = 0;
    for (int fd : fds) {
      if (fd >= 0) p[n++] = {fd, POLLIN, 0};
    }
    p[n++] = {wake_fd_, POLLIN, 0};
    if (!exit_seen && pidfd_ >= 0) p[n++] = {pidfd_, POLLIN, 0};
    int rc = poll(p, n, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) break;
    bool stop = false;
    for (int k = 0; k < n; ++k) {
      if (p[k].revents == 0) continue;
      if (p[k].fd == wake_fd_) {
        stop = true;
        continue;
      }
      if (p[k].fd == pidfd_) {
        exit_seen = true;
        std::lock_guard<std::mutex> lock(mu_);
        cv_.notify_all();
        continue;
      }
      int i = p[k].fd == fds[0] ? 0 : 1;
      char buf[65536];
      ssize_t got = read(fds[i], buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (got > 0) {
        (i == 0 ? out_ : err_).append(buf, got);
      } else {
        close(fds[i]);
        fds[i] = -1;
      }
      cv_.notify_all();
    }
    if (stop) break;
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  std::lock_guard<std::mutex> lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

bool Daemon::exited() const {
  if (pidfd_ < 0) return true;
  pollfd p = {pidfd_, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

absl::StatusOr<std::string> Daemon::WaitForLine(const std::string& prefix, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    for (absl::string_view line : absl::StrSplit(out_, '\n')) {
      // Only complete lines (a line is complete once a '\n' follows it).
      if (absl::StartsWith(line, prefix) && line.data() + line.size() < out_.data() + out_.size()) {
        return std::string(line.substr(prefix.size()));
      }
    }
    if (eof_ || exited()) {
      // Give the reader a moment to drain what the daemon wrote before exiting.
      lock.unlock();
      std::optional<int> code = WaitExit(absl::Seconds(1));
      lock.lock();
      for (absl::string_view line : absl::StrSplit(out_, '\n')) {
        if (absl::StartsWith(line, prefix)) return std::string(line.substr(prefix.size()));
      }
      return absl::UnavailableError(absl::StrCat(
          name_, " exited (", code.has_value() ? absl::StrCat("code ", *code) : "?", ") before printing \"", prefix,
          "...\"; stdout:\n", Tail(out_, 3000), "\nstderr:\n", Tail(err_, 3000)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(name_, " did not print \"", prefix, "...\" within ",
                                                      absl::FormatDuration(timeout), "; stdout:\n", Tail(out_, 3000),
                                                      "\nstderr:\n", Tail(err_, 3000)));
    }
    cv_.wait_for(lock, absl::ToChronoMilliseconds(deadline - absl::Now()));
  }
}

absl::StatusOr<std::string> Daemon::WaitListening(const std::string& what, absl::Duration timeout) {
  absl::StatusOr<std::string> rest = WaitForLine(absl::StrCat("constellation: ", what, " listening on "), timeout);
  if (!rest.ok()) return rest;
  return std::string(absl::StripAsciiWhitespace(*rest));
}

std::optional<int> Daemon::WaitExit(absl::Duration timeout) {
  if (exit_code_.has_value()) return exit_code_;
  if (pidfd_ < 0) return std::nullopt;
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    pollfd p = {pidfd_, POLLIN, 0};
    int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    int rc = poll(&p, 1, ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return std::nullopt;
    break;
  }
  OnExit();
  return exit_code_;
}

void Daemon::OnExit() {
  if (exit_code_.has_value()) return;
  siginfo_t info{};
  int rc;
  do {
    rc = waitid(P_PID, pid_, &info, WEXITED | WNOWAIT);  // stays a zombie: keeps the group id reserved
  } while (rc < 0 && errno == EINTR);
  exit_code_ = rc == 0 ? ShellCode(info) : -1;
}

void Daemon::Crash() {
  if (pid_ > 0 && !exit_code_.has_value()) kill(pid_, SIGKILL);
}

std::vector<pid_t> Daemon::Launched() const { return GroupMembers(pid_, pid_, Zombies::kExclude); }

std::vector<pid_t> Daemon::WaitLaunchedGone(absl::Duration limit) {
  absl::Time until = absl::Now() + limit;
  while (true) {
    ReapOrphans();
    std::vector<pid_t> left = Launched();
    if (left.empty() || absl::Now() > until) return left;
    // These are not our children: nothing to wait on; look again shortly.
    usleep(5000);
  }
}

void Daemon::ReapOrphans() {
  if (pid_ <= 0) return;
  std::string group = absl::StrCat(pid_);
  std::string self = absl::StrCat(getpid());
  for (pid_t pid : AllPids()) {
    if (pid == pid_) continue;
    std::vector<std::string> fields = StatFields(pid);
    if (fields.size() > 2 && fields[2] == group && fields[1] == self && fields[0] == "Z") {
      int status;
      waitpid(pid, &status, WNOHANG);
    }
  }
}

void Daemon::Stop(absl::Duration grace) {
  if (pid_ <= 0 || reaped_) return;
  if (!WaitExit(absl::ZeroDuration()).has_value()) {
    kill(pid_, SIGTERM);
    if (!WaitExit(grace).has_value()) {
      // Not a failure here: DaemonCli.DaemonsExitOnSigterm checks shutdown.
      std::cerr << name_ << " did not exit within " << grace << " of SIGTERM; SIGKILLing it\n";
      kill(pid_, SIGKILL);
      WaitExit(absl::Seconds(30));
    }
  }
  // Whatever the daemon left behind in its group (the leader is an unreaped
  // zombie, so the group id is still ours).
  absl::Time until = absl::Now() + absl::Seconds(20);
  while (true) {
    kill(-pid_, SIGKILL);
    ReapOrphans();
    if (Launched().empty() || absl::Now() > until) break;
    usleep(5000);
  }
  std::vector<pid_t> left = Launched();
  if (!left.empty()) ADD_FAILURE() << name_ << ": " << left.size() << " processes survive SIGKILL, e.g. " << left[0];
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  RemoveStaleCgroups();  // a SIGKILLed daemon cannot remove its cgroups itself
}

std::string Daemon::stdout_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return out_;
}

std::string Daemon::stderr_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_;
}

std::string Daemon::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string state = exit_code_.has_value() ? absl::StrCat("exited ", *exit_code_) : "running";
  return absl::StrCat("--- ", name_, " (OS pid ", pid_, ", ", state, ")\nstdout:\n", Tail(out_, 1500), "\nstderr:\n",
                      Tail(err_, 3000), "\n");
}

}  // namespace constellation::testing
