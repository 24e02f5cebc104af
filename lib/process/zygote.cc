#include "lib/process/zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "lib/process/zygote_signals.h"
#include "lib/process/zygote_socket.h"

extern char** environ;

namespace constellation::process_internal {
namespace {

// How long the bridge waits for the zygote to end once its socket closed.
constexpr int kExitWaitMs = 2000;

// A launch request carries the spawn's resources (a pb::Resources, which the
// next spare takes as its guess) and exactly these two fds. The bridge's
// request for spares carries the cgroup base (a pb::CgroupBase) and no fds.
// A launcher that ends its zygote and goes on says so first (kEndTag); a
// socket that closes without it means the launcher died, and the zygote tells
// its spare (kLauncherGoneTag), which then removes the base if it was last.
constexpr char kLaunchTag = 'L';
constexpr char kSparesTag = 'S';
constexpr char kEndTag = 'E';
constexpr char kLauncherGoneTag = 'G';
constexpr int kRequestFds = 2;  // the hand-off memfd, the data port
static_assert(kRequestFds <= kMaxZygoteMessageFds);

void ToDevNull(int target, int flags) {
  int fd = open("/dev/null", flags | O_CLOEXEC);
  if (fd < 0) return;
  dup2(fd, target);  // the copy at `target` is not CLOEXEC
  close(fd);
}

bool IsLaunch(const ZygoteMessage& m) { return m.tag == kLaunchTag && !m.cut && m.nfds == kRequestFds; }

void Reply(int sock, int64_t value) {
  ssize_t n;
  do {
    n = send(sock, &value, sizeof(value), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
}

// The zygote's spare: a forked child waiting for a spawn on its socket.
struct Spare {
  int fd = -1;
  pid_t pid = 0;
  int pidfd = -1;
  bool ready() const { return fd >= 0; }
  void Drop() {
    if (fd >= 0) close(fd);
    if (pidfd >= 0) close(pidfd);
    fd = pidfd = -1;
  }
};

// Forks a spare. Returns true in the spare itself (`start` filled in); in the
// zygote false, with `spare` ready unless the fork failed.
bool ForkSpare(int sock, bool executed, const pb::CgroupBase& base, const std::optional<pb::Resources>& expected,
               Spare* spare, ZygoteStart* start) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    close(sock);
    close(sv[0]);
    EnterSpareSignals();
    start->child = true;
    start->spare_fd = sv[1];
    start->base = base;
    start->expected = expected;
    start->executed = executed;
    return true;
  }
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return false;
  }
  spare->fd = sv[0];
  spare->pid = pid;
  spare->pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (spare->pidfd >= 0) fcntl(spare->pidfd, F_SETFD, FD_CLOEXEC);
  return false;
}

// Hands a launch request's fds to the spare, which then is the spawn's
// monitor; the spare is used up either way. False if it is gone.
bool HandToSpare(Spare* spare, const int fds[kRequestFds]) {
  bool sent = SendZygoteMessage(spare->fd, kLaunchTag, fds, kRequestFds, "", MSG_DONTWAIT);
  spare->Drop();
  return sent;
}

// The zygote's end: closing the spare's socket tells it to clean up (kill
// its process, remove its leaf); waits for that, boundedly, so that the
// launcher finds no leaf of it left when it removes the cgroup base.
[[noreturn]] void EndZygote(Spare* spare, bool launcher_gone) {
  if (spare->ready() && launcher_gone) SendZygoteMessage(spare->fd, kLauncherGoneTag, nullptr, 0, "", MSG_DONTWAIT);
  if (spare->ready()) {
    int pidfd = spare->pidfd;
    spare->pidfd = -1;
    spare->Drop();
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      while (poll(&p, 1, kExitWaitMs / 2) < 0 && errno == EINTR) {
      }
    }
  }
  _exit(0);
}

// The parent of `pid` from /proc/<pid>/stat; none if it is gone.
std::optional<pid_t> ParentOf(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[512];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  const char* end_of_name = strrchr(buf, ')');  // the name may hold spaces and parentheses
  int parent = 0;
  if (end_of_name == nullptr || sscanf(end_of_name + 1, " %*c %d", &parent) != 1) return std::nullopt;
  return parent;
}

ZygoteStart ForkedChild(const ZygoteMessage& request) {
  ZygoteStart start;
  start.child = true;
  start.memfd = request.fds[0];
  start.listen_fd = request.fds[1];
  return start;
}

// The zygote's life: one fork per request (or a spare handed the request
// and a new one forked), until the launcher's end closes. Returns only in a
// child or a spare. `executed`: a node daemon executed this zygote.
ZygoteStart Serve(int sock, bool executed) {
  std::optional<pb::CgroupBase> base;  // set once the launcher asks for spares
  std::optional<pb::Resources> last;   // the last launch's, the next spare's guess
  Spare spare;
  while (true) {
    if (base && !spare.ready()) {
      ZygoteStart start;
      if (ForkSpare(sock, executed, *base, last, &spare, &start)) return start;
    }
    ZygoteMessage m;
    if (!ReceiveZygoteMessage(sock, &m)) EndZygote(&spare, /*launcher_gone=*/true);
    if (m.tag == kEndTag) EndZygote(&spare, /*launcher_gone=*/false);
    if (m.tag == kSparesTag) {  // never answered; the first well-formed one counts
      pb::CgroupBase parsed;
      if (!base && !m.cut && m.nfds == 0 && parsed.ParseFromString(m.payload)) base = parsed;
      m.CloseFds();
      continue;
    }
    if (!IsLaunch(m)) {
      m.CloseFds();
      Reply(sock, -EINVAL);
      continue;
    }
    if (pb::Resources resources; resources.ParseFromString(m.payload) && resources.mem() > 0) last = resources;
    if (spare.ready()) {
      pid_t pid = spare.pid;
      if (HandToSpare(&spare, m.fds)) {
        m.CloseFds();
        Reply(sock, pid);
        continue;
      }
    }
    pid_t child = fork();
    if (child == 0) {
      close(sock);
      spare.Drop();
      RestoreProgramSignals();
      return ForkedChild(m);
    }
    m.CloseFds();
    Reply(sock, child > 0 ? int64_t{child} : int64_t{-errno});
  }
}

}  // namespace

Zygote::Zygote(int fd, pid_t pid, int pidfd, std::string path, std::vector<std::string> argv,
               std::vector<std::string> env)
    : fd_(fd),
      owner_(getpid()),
      pid_(pid),
      pidfd_(pidfd),
      path_(std::move(path)),
      argv_(std::move(argv)),
      env_(std::move(env)) {}

absl::StatusOr<std::unique_ptr<Zygote>> Zygote::Exec(const LaunchOptions& options) {
  if (options.stdin_fd >= 0) return absl::InvalidArgumentError("a zygote's stdin is /dev/null");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  absl::StatusOr<pid_t> pid = SpawnInheriting(options, {sv[1]}, absl::StrCat(kZygoteFdEnv, "=", sv[1]));
  close(sv[1]);
  if (!pid.ok()) {
    close(sv[0]);
    return pid.status();
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, *pid, 0));
  if (pidfd >= 0) fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  std::vector<std::string> env;  // what its forks have, as executed launches would
  for (const std::string& e : options.env) {
    if (!IsLaunchMarker(e)) env.push_back(e);
  }
  std::unique_ptr<Zygote> zygote(new Zygote(sv[0], *pid, pidfd, options.path, options.argv, std::move(env)));
  zygote->executed_ = true;
  return zygote;
}

void Zygote::Abandon(bool kill_it) {
  if (kill_it) {
    // Through the pidfd when there is one: an executed zygote is reaped by
    // the kernel, so its pid alone may name another process by now.
    if (pidfd_ >= 0) {
      syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    } else {
      kill(pid_, SIGKILL);
    }
  }
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Zygote::~Zygote() {
  const bool owner = getpid() == owner_;                                                 // not a fork's copy
  if (owner && fd_ >= 0) SendZygoteMessage(fd_, kEndTag, nullptr, 0, "", MSG_DONTWAIT);  // the launcher goes on
  if (fd_ >= 0) close(fd_);
  if (pidfd_ < 0) return;
  if (!owner || executed_) {  // an executed zygote's end is not this process's to wait for
    close(pidfd_);
    return;
  }
  pollfd p{pidfd_, POLLIN, 0};
  while (poll(&p, 1, kExitWaitMs) < 0 && errno == EINTR) {
  }
  close(pidfd_);
}

bool Zygote::Serves(const LaunchOptions& options) const {
  return fd_ >= 0 && options.path == path_ && options.stdin_fd < 0 && options.argv == argv_ && options.env == env_;
}

bool Zygote::Send(char tag, const int* fds, int nfds, const std::string& payload) {
  if (fd_ < 0) return false;
  return SendZygoteMessage(fd_, tag, fds, nfds, payload, 0);
}

void Zygote::KeepSpares(const pb::CgroupBase& base) { Send(kSparesTag, nullptr, 0, base.SerializeAsString()); }

absl::StatusOr<pid_t> Zygote::Launch(const pb::SpawnInfo& info) {
  if (fd_ < 0) return absl::UnavailableError("the zygote is gone");
  absl::StatusOr<int> memfd = WriteSpawnInfo(info);
  if (!memfd.ok()) return memfd.status();
  int fds[kRequestFds] = {*memfd, info.listen_fd()};
  bool sent = Send(kLaunchTag, fds, kRequestFds, info.resources().SerializeAsString());
  int send_errno = errno;
  close(*memfd);
  if (!sent) {
    Abandon(false);  // the zygote died: spawn by exec from now on
    return absl::UnavailableError(absl::StrCat("the zygote is gone: ", std::strerror(send_errno)));
  }
  absl::StatusOr<int64_t> answer = AwaitAnswer();
  if (!answer.ok()) return answer.status();
  if (*answer <= 0) {
    int error = static_cast<int>(-*answer);
    std::string message = absl::StrCat("zygote fork: ", std::strerror(error));
    if (error == EAGAIN || error == ENOMEM) return absl::ResourceExhaustedError(message);
    return absl::InternalError(message);
  }
  pid_t child = static_cast<pid_t>(*answer);
  // The launcher will admit, watch and kill this pid as the spawn's monitor:
  // from a process a node daemon executed, it must be the zygote's child.
  std::optional<pid_t> parent = executed_ ? ParentOf(child) : std::nullopt;  // none: it ended already, as a child may
  if (parent && *parent != pid_) {
    Abandon(true);
    return absl::InternalError(
        absl::StrCat("the zygote answered OS pid ", child, ", which is not its child; the zygote was killed"));
  }
  return child;
}

absl::StatusOr<int64_t> Zygote::AwaitAnswer() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(answer_timeout_ms_);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      Abandon(true);
      return absl::DeadlineExceededError(
          absl::StrCat("the zygote did not answer a launch within ", answer_timeout_ms_, " ms; it was killed"));
    }
    break;
  }
  int64_t answer = 0;
  ssize_t n;
  do {
    n = recv(fd_, &answer, sizeof(answer), MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n != sizeof(answer)) {
    // The zygote died (or broke the protocol): spawn by exec from now on.
    int error = n < 0 ? errno : EPIPE;
    Abandon(n > 0);
    return absl::UnavailableError(absl::StrCat("the zygote is gone: ", std::strerror(error)));
  }
  return answer;
}

bool SendSpawn(int fd, int memfd, int listen_fd) {
  int fds[kRequestFds] = {memfd, listen_fd};
  return SendZygoteMessage(fd, kLaunchTag, fds, kRequestFds, "", 0);
}

bool AwaitSpawn(int spare_fd, int* memfd, int* listen_fd, int watched_fd, bool* launcher_gone) {
  // The user process sends nothing before its spawn: anything on its socket
  // is its end closing.
  pollfd ready[2] = {{spare_fd, POLLIN, 0}, {watched_fd, POLLIN, 0}};
  while (true) {
    int n = poll(ready, watched_fd >= 0 ? 2 : 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (ready[0].revents != 0) break;  // a spawn that came first is taken
    if (ready[1].revents != 0) return false;
  }
  ZygoteMessage m;
  if (!ReceiveZygoteMessage(spare_fd, &m)) return false;
  if (!IsLaunch(m)) {
    if (launcher_gone != nullptr) *launcher_gone = m.tag == kLauncherGoneTag;
    m.CloseFds();
    return false;
  }
  *memfd = m.fds[0];
  *listen_fd = m.fds[1];
  return true;
}

ZygoteStart ServeExecZygote(int sock) {
  fcntl(sock, F_SETFD, FD_CLOEXEC);
  EnterZygoteSignals();  // stdin and stdout are /dev/null already (Zygote::Exec)
  return Serve(sock, /*executed=*/true);
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
    return Serve(sv[1], /*executed=*/false);
  }
  close(sv[1]);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  ZygoteStart start;
  start.zygote.reset(new Zygote(sv[0], pid, pidfd, "/proc/self/exe", std::move(argv), std::move(env)));
  return start;
}

absl::StatusOr<ZygoteMode> ParseZygoteMode(const char* value) {
  if (value == nullptr || *value == '\0') return ZygoteMode::kOn;
  std::string v = value;
  if (v == "on" || v == "auto") return ZygoteMode::kOn;
  if (v == "no-spare") return ZygoteMode::kNoSpare;
  if (v == "off") return ZygoteMode::kOff;
  return absl::InvalidArgumentError(absl::StrCat(kZygoteEnv, "=", v,
                                                 " is not understood: use on (the default), no-spare (fork at each "
                                                 "spawn, none ahead) or off (every spawn re-executes)"));
}

}  // namespace constellation::process_internal
