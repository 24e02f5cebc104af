#include "lib/process/zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace constellation::process_internal {
namespace {

// How long the bridge waits for the zygote to end once its socket closed.
constexpr int kExitWaitMs = 2000;

// A request carries no bytes beyond this tag, and exactly these two fds.
constexpr char kLaunchTag = 'L';
constexpr int kRequestFds = 2;  // the hand-off memfd, the data port

// The signals the zygote handles differently from the program (kept away
// from a terminal's Ctrl-C and from the program's own handlers, which must
// not run in the zygote). Children get the program's dispositions back.
struct SavedSignals {
  struct sigaction action[NSIG];
  bool changed[NSIG] = {};
};

SavedSignals& Saved() {
  static SavedSignals saved;
  return saved;
}

void Change(int signo, void (*handler)(int), int flags) {
  SavedSignals& saved = Saved();
  struct sigaction action {};
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  if (sigaction(signo, &action, &saved.action[signo]) == 0) saved.changed[signo] = true;
}

// In the zygote: terminal signals are ignored (the bridge stops the program
// and closes the zygote's socket), the program's handlers are dropped, and
// children are reaped by the kernel.
void EnterZygoteSignals() {
  for (int signo = 1; signo < NSIG; ++signo) {
    if (signo == SIGKILL || signo == SIGSTOP || signo == SIGCHLD) continue;
    struct sigaction current {};
    if (sigaction(signo, nullptr, &current) != 0) continue;  // glibc's reserved signals
    bool handled =
        (current.sa_flags & SA_SIGINFO) != 0 || (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN);
    if (signo == SIGINT || signo == SIGHUP || signo == SIGQUIT) {
      Change(signo, SIG_IGN, 0);
    } else if (handled) {
      Change(signo, SIG_DFL, 0);
    }
  }
  Change(SIGCHLD, SIG_DFL, SA_NOCLDWAIT);
}

// In a child: the program's dispositions of init() time, an empty mask, and
// SIGCHLD never ignored (its monitor waits for its own child).
void LeaveZygoteSignals() {
  SavedSignals& saved = Saved();
  for (int signo = 1; signo < NSIG; ++signo) {
    if (!saved.changed[signo]) continue;
    struct sigaction action = saved.action[signo];
    if (signo == SIGCHLD && (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_IGN) {
      action.sa_handler = SIG_DFL;
    }
    if (signo == SIGCHLD) action.sa_flags &= ~SA_NOCLDWAIT;
    sigaction(signo, &action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

void ToDevNull(int target, int flags) {
  int fd = open("/dev/null", flags | O_CLOEXEC);
  if (fd < 0) return;
  dup2(fd, target);  // the copy at `target` is not CLOEXEC
  close(fd);
}

// Receives one request: its tag and exactly kRequestFds fds (CLOEXEC).
// Returns false when the bridge's end is closed.
bool ReceiveRequest(int sock, int fds[kRequestFds], bool* well_formed) {
  char tag = 0;
  iovec iov{&tag, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kRequestFds + 2))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  int count = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (count < kRequestFds) {
        fds[count] = fd;
      } else {
        close(fd);
      }
      ++count;
    }
  }
  *well_formed = n == 1 && tag == kLaunchTag && count == kRequestFds && (msg.msg_flags & MSG_CTRUNC) == 0;
  if (!*well_formed) {
    for (int i = 0; i < count && i < kRequestFds; ++i) close(fds[i]);
  }
  return true;
}

void Reply(int sock, int64_t value) {
  ssize_t n;
  do {
    n = send(sock, &value, sizeof(value), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
}

// The zygote's life: one fork per request, until the bridge's end closes.
// Returns only in a child, with its hand-off.
ZygoteStart Serve(int sock) {
  while (true) {
    int fds[kRequestFds] = {-1, -1};
    bool well_formed = false;
    if (!ReceiveRequest(sock, fds, &well_formed)) _exit(0);
    if (!well_formed) {
      Reply(sock, -EINVAL);
      continue;
    }
    pid_t child = fork();
    if (child == 0) {
      close(sock);
      LeaveZygoteSignals();
      ZygoteStart start;
      start.child = true;
      start.memfd = fds[0];
      start.listen_fd = fds[1];
      return start;
    }
    for (int fd : fds) close(fd);
    Reply(sock, child > 0 ? int64_t{child} : int64_t{-errno});
  }
}

}  // namespace

Zygote::Zygote(int fd, pid_t pid, int pidfd, std::vector<std::string> argv, std::vector<std::string> env)
    : fd_(fd), owner_(getpid()), pid_(pid), pidfd_(pidfd), argv_(std::move(argv)), env_(std::move(env)) {}

Zygote::~Zygote() {
  if (fd_ >= 0) close(fd_);
  if (pidfd_ < 0) return;
  if (getpid() != owner_) {
    close(pidfd_);
    return;
  }
  pollfd p{pidfd_, POLLIN, 0};
  while (poll(&p, 1, kExitWaitMs) < 0 && errno == EINTR) {
  }
  close(pidfd_);
}

bool Zygote::Serves(const LaunchOptions& options) const {
  return fd_ >= 0 && options.path == "/proc/self/exe" && options.stdin_fd < 0 && options.argv == argv_ &&
         options.env == env_;
}

absl::StatusOr<pid_t> Zygote::Launch(const pb::SpawnInfo& info) {
  if (fd_ < 0) return absl::UnavailableError("the zygote is gone");
  absl::StatusOr<int> memfd = WriteSpawnInfo(info);
  if (!memfd.ok()) return memfd.status();
  int fds[kRequestFds] = {*memfd, info.listen_fd()};
  char tag = kLaunchTag;
  iovec iov{&tag, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(fds));
  std::memcpy(CMSG_DATA(c), fds, sizeof(fds));
  ssize_t n;
  do {
    n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  int send_errno = errno;
  close(*memfd);
  int64_t answer = 0;
  if (n == 1) {
    do {
      n = recv(fd_, &answer, sizeof(answer), 0);
    } while (n < 0 && errno == EINTR);
  }
  if (n != sizeof(answer)) {
    // The zygote died (or broke the protocol): spawn by exec from now on.
    close(fd_);
    fd_ = -1;
    return absl::UnavailableError(absl::StrCat("the zygote is gone: ", std::strerror(n < 0 ? errno : send_errno)));
  }
  if (answer <= 0) {
    int error = static_cast<int>(-answer);
    std::string message = absl::StrCat("zygote fork: ", std::strerror(error));
    if (error == EAGAIN || error == ENOMEM) return absl::ResourceExhaustedError(message);
    return absl::InternalError(message);
  }
  return static_cast<pid_t>(answer);
}

ZygoteStart StartZygote(std::vector<std::string> argv) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return {};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  fflush(nullptr);  // buffered output must not be written twice
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return {};
  }
  if (pid == 0) {
    close(sv[0]);
    // Dies with the bridge, whose end of the socket then closes too.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    EnterZygoteSignals();
    // The top process's stdin and stdout belong to the root and the bridge;
    // holding them here would keep a reader of stdout from seeing its end.
    ToDevNull(STDIN_FILENO, O_RDONLY);
    ToDevNull(STDOUT_FILENO, O_WRONLY);
    return Serve(sv[1]);
  }
  close(sv[1]);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  ZygoteStart start;
  start.zygote.reset(new Zygote(sv[0], pid, pidfd, std::move(argv), std::move(env)));
  return start;
}

absl::StatusOr<bool> ZygoteWanted(const char* value) {
  if (value == nullptr || *value == '\0') return true;
  std::string v = value;
  if (v == "on" || v == "auto") return true;
  if (v == "off") return false;
  return absl::InvalidArgumentError(
      absl::StrCat(kZygoteEnv, "=", v, " is not understood: use on (the default) or off (every spawn re-executes)"));
}

}  // namespace constellation::process_internal
