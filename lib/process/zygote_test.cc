#include "lib/process/zygote.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace constellation::process_internal {
namespace {

using ::testing::HasSubstr;

constexpr int kAfterStartFd = 900;  // opened after the zygote started: no child may have it

int g_value = 0;

void OnUsr1(int) {}

std::string FdTarget(int fd) {
  char buf[256];
  ssize_t n = readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof(buf) - 1);
  return n < 0 ? "closed" : std::string(buf, n);
}

// In a child the zygote forked: writes what it sees to the "data port" (a
// pipe in these tests) and exits. Never returns into the test.
[[noreturn]] void RunChild(const ZygoteStart& start) {
  absl::StatusOr<pb::SpawnInfo> info = ReadSpawnInfoFd(start.memfd);
  struct sigaction usr1 {
  }, chld{};
  sigaction(SIGUSR1, nullptr, &usr1);
  sigaction(SIGCHLD, nullptr, &chld);
  sigset_t mask;
  sigprocmask(SIG_SETMASK, nullptr, &mask);
  std::string report = absl::StrCat(
      "value=", g_value, " handoff=", info.ok() ? info->bridge() : "unreadable", " after_fd=", FdTarget(kAfterStartFd),
      " stdin=", FdTarget(0), " stdout=", FdTarget(1), " usr1=", usr1.sa_handler == &OnUsr1 ? "handler" : "other",
      " chld=", chld.sa_handler == SIG_DFL && (chld.sa_flags & SA_NOCLDWAIT) == 0 ? "default" : "other",
      " usr2_blocked=", sigismember(&mask, SIGUSR2), " fds=");
  // Every fd the child holds beside the standard ones and the hand-off.
  for (int fd = 3; fd < 1024; ++fd) {
    if (fd != start.listen_fd && fcntl(fd, F_GETFD) >= 0) absl::StrAppend(&report, fd, ",");
  }
  if (write(start.listen_fd, report.data(), report.size()) < 0) _exit(3);
  _exit(0);
}

std::string ReadAll(int fd) {
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) all.append(buf, n);
  return all;
}

// In a spare: waits for its hand-off as lib/process/process_start.cc does,
// then runs as a forked child would.
[[noreturn]] void RunSpare(const ZygoteStart& start) {
  ZygoteStart handed;
  if (!AwaitSpawn(start.spare_fd, &handed.memfd, &handed.listen_fd)) _exit(0);
  close(start.spare_fd);
  RestoreProgramSignals();
  RunChild(handed);
}

// Starts a zygote from the test process (single-threaded here).
std::unique_ptr<Zygote> Start(std::vector<std::string> argv = {"program"}) {
  ZygoteStart start = StartZygote(std::move(argv));
  if (start.child && start.spare_fd >= 0) RunSpare(start);
  if (start.child) RunChild(start);
  return std::move(start.zygote);
}

// Launches one child whose hand-off names `tag`; returns what it reported
// (and in `pid`, the child's).
std::string LaunchAndRead(Zygote& zygote, const std::string& tag, pid_t* pid = nullptr) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return "no pipe";
  pb::SpawnInfo info;
  info.set_bridge(tag);
  info.set_listen_fd(report[1]);
  absl::StatusOr<pid_t> child = zygote.Launch(info);
  close(report[1]);
  std::string got = child.ok() ? ReadAll(report[0]) : child.status().ToString();
  close(report[0]);
  if (pid != nullptr) *pid = child.ok() ? *child : -1;
  return got;
}

// The children of `parent` (from /proc), waiting up to 30 s for at least one.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  for (int attempt = 0; attempt < 3000; ++attempt) {
    std::vector<pid_t> children;
    std::string list;
    int fd = open(absl::StrCat("/proc/", parent, "/task/", parent, "/children").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      list = ReadAll(fd);
      close(fd);
    }
    for (absl::string_view word : absl::StrSplit(list, ' ', absl::SkipEmpty())) {
      pid_t pid = 0;
      if (absl::SimpleAtoi(word, &pid)) children.push_back(pid);
    }
    if (!children.empty()) return children;
    usleep(10'000);
  }
  return {};
}

// Whether `pid` ends within 30 s.
bool Ends(pid_t pid) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;
  pollfd p{pidfd, POLLIN, 0};
  bool ended = poll(&p, 1, 30'000) == 1;
  close(pidfd);
  return ended;
}

int OpenFdsAbove(int fd) {
  int n = 0;
  for (int i = fd + 1; i < 1024; ++i) n += fcntl(i, F_GETFD) >= 0;
  return n;
}

void ExpectChildrenStartFromTheStateAtStart(bool spares) {
  g_value = 1;
  signal(SIGUSR1, OnUsr1);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr2, nullptr);
  int fds_before = OpenFdsAbove(2);
  std::unique_ptr<Zygote> zygote = Start();
  ASSERT_NE(zygote, nullptr);
  if (spares) zygote->KeepSpares(pb::CgroupBase());  // no cgroups: spares without leaves
  sigprocmask(SIG_UNBLOCK, &usr2, nullptr);
  g_value = 2;  // after the start: no child sees it
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_EQ(dup2(fd, kAfterStartFd), kAfterStartFd);
  close(fd);

  for (const std::string tag : {"first", "second"}) {
    std::string got = LaunchAndRead(*zygote, tag);
    EXPECT_THAT(got, HasSubstr(absl::StrCat("value=1 handoff=", tag,
                                            " after_fd=closed stdin=/dev/null stdout=/dev/null usr1=handler "
                                            "chld=default usr2_blocked=0 fds=")));
    // The fds the test process had before the start (gtest's), and the
    // hand-off's memfd (read and closed by the child), nothing else: not the
    // zygote's socket, not a sibling's hand-off.
    size_t at = got.find("fds=");
    ASSERT_NE(at, std::string::npos) << got;
    int others = 0;
    for (char c : got.substr(at)) others += c == ',';
    EXPECT_EQ(others, fds_before) << got;
  }
  close(kAfterStartFd);
  signal(SIGUSR1, SIG_DFL);
  pid_t pid = zygote->os_pid();
  zygote.reset();
  waitpid(pid, nullptr, 0);
}

TEST(Zygote, ChildrenStartFromTheStateAtStartWithTheirHandOff) { ExpectChildrenStartFromTheStateAtStart(false); }

TEST(Zygote, ChildrenOfSparesStartFromTheStateAtStartWithTheirHandOff) { ExpectChildrenStartFromTheStateAtStart(true); }

// Starts a zygote with spares (no cgroups); returns its children once it has
// one, the spare (none if it failed to start).
std::vector<pid_t> StartWithSpare(std::unique_ptr<Zygote>* zygote) {
  *zygote = Start();
  if (*zygote == nullptr) return {};
  (*zygote)->KeepSpares(pb::CgroupBase());
  return ChildrenOf((*zygote)->os_pid());
}

// With spares, a launch goes to the child forked ahead of it, and the next
// one is forked at once.
TEST(Zygote, ALaunchIsServedByTheSpareForkedAhead) {
  std::unique_ptr<Zygote> zygote;
  std::vector<pid_t> spare = StartWithSpare(&zygote);
  ASSERT_EQ(spare.size(), 1u);
  pid_t served = -1;
  EXPECT_THAT(LaunchAndRead(*zygote, "first", &served), HasSubstr("handoff=first"));
  EXPECT_EQ(served, spare[0]);
  ASSERT_TRUE(Ends(served));
  std::vector<pid_t> next = ChildrenOf(zygote->os_pid());
  ASSERT_EQ(next.size(), 1u);
  EXPECT_NE(next[0], served);
  pid_t pid = zygote->os_pid();
  zygote.reset();
  EXPECT_TRUE(Ends(next[0])) << "the spare outlived its zygote";
  waitpid(pid, nullptr, 0);
}

// A spare that died (killed, out of memory) costs nothing but the head
// start: the launch is forked as without spares.
TEST(Zygote, ADeadSpareIsReplacedByAFork) {
  std::unique_ptr<Zygote> zygote;
  std::vector<pid_t> spare = StartWithSpare(&zygote);
  ASSERT_EQ(spare.size(), 1u);
  kill(spare[0], SIGKILL);
  ASSERT_TRUE(Ends(spare[0]));
  pid_t served = -1;
  EXPECT_THAT(LaunchAndRead(*zygote, "after", &served), HasSubstr("handoff=after"));
  EXPECT_GT(served, 0);
  EXPECT_NE(served, spare[0]);
  pid_t pid = zygote->os_pid();
  zygote.reset();
  waitpid(pid, nullptr, 0);
}

TEST(Zygote, EndsWhenTheBridgesEndCloses) {
  std::unique_ptr<Zygote> zygote = Start();
  ASSERT_NE(zygote, nullptr);
  pid_t pid = zygote->os_pid();
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  ASSERT_GE(pidfd, 0);
  zygote.reset();  // waits for the end
  pollfd p{pidfd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 1);
  close(pidfd);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(Zygote, AGoneZygoteIsUnavailable) {
  std::unique_ptr<Zygote> zygote = Start();
  ASSERT_NE(zygote, nullptr);
  pid_t pid = zygote->os_pid();
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  int report[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  pb::SpawnInfo info;
  info.set_listen_fd(report[1]);
  absl::StatusOr<pid_t> child = zygote->Launch(info);
  EXPECT_TRUE(absl::IsUnavailable(child.status())) << child.status();
  LaunchOptions options{"/proc/self/exe", {"program"}, {}, -1};
  EXPECT_FALSE(zygote->Serves(options));  // from now on: exec
  close(report[0]);
  close(report[1]);
}

TEST(Zygote, ServesOnlyTheProgramsOwnArgvAndEnvironment) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  std::unique_ptr<Zygote> zygote = Start({"program", "--flag"});
  ASSERT_NE(zygote, nullptr);
  LaunchOptions same{"/proc/self/exe", {"program", "--flag"}, env, -1};
  EXPECT_TRUE(zygote->Serves(same));
  LaunchOptions other_argv = same;
  other_argv.argv.push_back("more");
  EXPECT_FALSE(zygote->Serves(other_argv));
  LaunchOptions other_env = same;
  other_env.env.push_back("ZYGOTE_TEST=1");
  EXPECT_FALSE(zygote->Serves(other_env));
  LaunchOptions other_binary = same;
  other_binary.path = "/bin/true";
  EXPECT_FALSE(zygote->Serves(other_binary));
  LaunchOptions with_stdin = same;
  with_stdin.stdin_fd = 0;
  EXPECT_FALSE(zygote->Serves(with_stdin));
  pid_t pid = zygote->os_pid();
  zygote.reset();
  waitpid(pid, nullptr, 0);
}

// A spare whose user process is gone (its control socket's other end
// closed) stops waiting, so that it ends and the zygote forks the spawn
// itself; a spawn that came first is still taken.
TEST(Zygote, ASpareStopsWaitingWhenItsProcessIsGone) {
  int spare[2], control[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, spare), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control), 0);
  close(control[1]);  // the process ended before its spawn came
  int memfd = -1, listen_fd = -1;
  EXPECT_FALSE(AwaitSpawn(spare[1], &memfd, &listen_fd, control[0]));
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(SendSpawn(spare[0], fd, fd));
  EXPECT_TRUE(AwaitSpawn(spare[1], &memfd, &listen_fd, control[0]));
  for (int f : {memfd, listen_fd, fd, spare[0], spare[1], control[0]}) close(f);
}

TEST(Zygote, Setting) {
  EXPECT_EQ(*ParseZygoteMode(nullptr), ZygoteMode::kOn);
  EXPECT_EQ(*ParseZygoteMode(""), ZygoteMode::kOn);
  EXPECT_EQ(*ParseZygoteMode("on"), ZygoteMode::kOn);
  EXPECT_EQ(*ParseZygoteMode("no-spare"), ZygoteMode::kNoSpare);
  EXPECT_EQ(*ParseZygoteMode("off"), ZygoteMode::kOff);
  EXPECT_THAT(ParseZygoteMode("maybe").status().message(), HasSubstr("CONSTELLATION_ZYGOTE=maybe"));
}

}  // namespace
}  // namespace constellation::process_internal
