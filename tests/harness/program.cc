#include "tests/harness/program.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/harness/cgroups.h"
#include "tests/harness/proc_fs.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {
namespace {

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

std::string ExitStatus::ToString() const {
  if (timed_out) return "timed out";
  if (exited) return absl::StrCat("exit code ", code);
  return absl::StrCat("signal ", signal, " (", strsignal(signal), ")");
}

Program::Program(const std::string& path, RunOptions options) : options_(std::move(options)) {
  signal(SIGPIPE, SIG_IGN);  // a program that closed its stdin must not kill the test
  deadline_ = absl::Now() + options_.timeout;
  std::vector<std::string> argv = {path};
  argv.insert(argv.end(), options_.args.begin(), options_.args.end());
  command_ = absl::StrJoin(argv, " ");

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << ErrnoText("pipe2");
    status_ = ExitStatus{};
    return;
  }
  std::vector<std::pair<std::string, std::string>> extra;
  if (options_.format.has_value()) extra.emplace_back("CONSTELLATION_FORMAT", *options_.format);
  extra.insert(extra.end(), options_.env.begin(), options_.env.end());
  std::vector<std::string> env = CleanEnvironment(extra);
  absl::StatusOr<pid_t> pid = SpawnInGroup(argv, &env, in[0], out[1], err[1]);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  stderr_fd_ = err[0];
  SetNonBlocking(stdin_fd_);
  SetNonBlocking(stdout_fd_);
  SetNonBlocking(stderr_fd_);
  if (!pid.ok()) {
    ADD_FAILURE() << pid.status();
    status_ = ExitStatus{};
    return;
  }
  pid_ = *pid;
  pidfd_ = PidfdOpen(pid_);
  if (pidfd_ < 0) ADD_FAILURE() << ErrnoText("pidfd_open");
  if (!options_.stdin_data.empty()) WriteStdin(options_.stdin_data);
  if (options_.close_stdin) CloseStdin();
}

Program::~Program() {
  if (pid_ > 0) {
    // The started process is unreaped (a zombie at worst), so its pid names our group still.
    kill(-pid_, SIGKILL);
    if (!reaped_) {
      int status;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  for (int fd : {pidfd_, stdin_fd_, stdout_fd_, stderr_fd_}) {
    if (fd >= 0) close(fd);
  }
  RemoveStaleCgroups();  // if the group kill took monitors with it
}

void Program::WriteStdin(absl::string_view data) {
  if (stdin_fd_ < 0) {
    ADD_FAILURE() << "stdin is already closed";
    return;
  }
  stdin_pending_.append(data.data(), data.size());
  // Write what fits now; Pump() writes the rest.
  while (!stdin_pending_.empty()) {
    ssize_t n = write(stdin_fd_, stdin_pending_.data(), stdin_pending_.size());
    if (n > 0) {
      stdin_pending_.erase(0, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) stdin_pending_.clear();
    break;
  }
}

void Program::CloseStdin() {
  stdin_close_requested_ = true;
  if (stdin_pending_.empty() && stdin_fd_ >= 0) {
    close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

void Program::Signal(int signal) {
  if (pid_ > 0 && !status_.has_value()) kill(pid_, signal);
}

void Program::Drain(int* fd, std::string* into) {
  if (*fd < 0) return;
  char buf[65536];
  while (true) {
    ssize_t n = read(*fd, buf, sizeof(buf));
    if (n > 0) {
      into->append(buf, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      close(*fd);
      *fd = -1;
    }
    return;  // EOF or EAGAIN
  }
}

void Program::SplitLines() {
  size_t newline;
  while ((newline = out_.find('\n', out_split_)) != std::string::npos) {
    lines_.push_back(out_.substr(out_split_, newline - out_split_));
    out_split_ = newline + 1;
  }
}

void Program::OnExited() {
  siginfo_t info{};
  int rc;
  do {
    rc = waitid(P_PID, pid_, &info, WEXITED | WNOWAIT);  // stays a zombie: see the header
  } while (rc < 0 && errno == EINTR);
  ExitStatus status;
  if (rc == 0 && info.si_code == CLD_EXITED) {
    status.exited = true;
    status.code = info.si_status;
  } else if (rc == 0) {
    status.signal = info.si_status;
  }
  status.timed_out = timed_out_;
  status_ = status;
  // Everything the program itself wrote is in the pipes now; processes it left
  // behind may hold them open, so read what is there and stop.
  Drain(&stdout_fd_, &out_);
  Drain(&stderr_fd_, &err_);
  SplitLines();
  // A last line without '\n'.
  if (out_split_ < out_.size()) {
    lines_.push_back(out_.substr(out_split_));
    out_split_ = out_.size();
  }
  for (int* fd : {&stdout_fd_, &stderr_fd_, &stdin_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void Program::TimeOut() {
  timed_out_ = true;
  ADD_FAILURE() << "the program did not finish within " << options_.timeout << "; killing its process group.\n"
                << "command: " << command_ << "\nstdout so far:\n"
                << Tail(out_) << "\nstderr so far:\n"
                << Tail(err_);
  kill(-pid_, SIGKILL);
}

bool Program::Pump() {
  if (status_.has_value()) return false;
  pollfd fds[4];
  int n = 0;
  if (stdout_fd_ >= 0) fds[n++] = {stdout_fd_, POLLIN, 0};
  if (stderr_fd_ >= 0) fds[n++] = {stderr_fd_, POLLIN, 0};
  if (stdin_fd_ >= 0 && !stdin_pending_.empty()) fds[n++] = {stdin_fd_, POLLOUT, 0};
  fds[n++] = {pidfd_, POLLIN, 0};
  absl::Duration left = deadline_ - absl::Now();
  int timeout_ms = timed_out_ ? -1 : static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(left)) + 1);
  int rc = poll(fds, n, timeout_ms);
  if (rc < 0 && errno != EINTR) {
    ADD_FAILURE() << ErrnoText("poll");
    TimeOut();
    return true;
  }
  if (rc == 0) {
    if (!timed_out_) TimeOut();
    return true;
  }
  for (int i = 0; i < n; ++i) {
    if (fds[i].revents == 0) continue;
    if (fds[i].fd == stdout_fd_) {
      Drain(&stdout_fd_, &out_);
      SplitLines();
    } else if (fds[i].fd == stderr_fd_) {
      Drain(&stderr_fd_, &err_);
    } else if (fds[i].fd == stdin_fd_) {
      if (fds[i].revents & (POLLERR | POLLHUP)) {
        stdin_pending_.clear();
      } else {
        WriteStdin("");
      }
      if (stdin_pending_.empty() && stdin_close_requested_) CloseStdin();
    } else if (fds[i].fd == pidfd_) {
      OnExited();
      return true;
    }
  }
  return true;
}

bool Program::NextLine(std::string* line) {
  while (next_line_ >= lines_.size()) {
    if (status_.has_value()) return false;
    if (timed_out_) {
      Wait();
      return false;
    }
    Pump();
  }
  *line = lines_[next_line_++];
  return true;
}

ExitStatus Program::Wait() {
  if (pid_ <= 0) return ExitStatus{};
  while (!status_.has_value()) Pump();
  return *status_;
}

std::vector<pid_t> Program::GroupMembers() const {
  return constellation::testing::GroupMembers(pid_, pid_, Zombies::kInclude);
}

std::vector<pid_t> Program::WaitGroupEmpty(absl::Duration limit) const {
  absl::Time until = absl::Now() + limit;
  while (true) {
    std::vector<pid_t> left = GroupMembers();
    if (left.empty() || absl::Now() > until) return left;
    // Nothing to wait on for processes that are not our children: look again shortly.
    usleep(2000);
  }
}

}  // namespace constellation::testing
