// NodeZygotes (node_zygotes.h) with a real program (testing/node_test_program)
// executed as the zygote: which launches it forks, who turns it down, how it
// ends, and what a zygote that is gone or stuck does to a launch.
#include "daemon/node_zygotes.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/process/cgroup.h"
#include "lib/process/local_socket.h"
#include "tests/harness/proc_fs.h"

namespace constellation::daemon {
namespace {

using process_internal::DescribeLaunch;
using process_internal::LaunchDescription;
using process_internal::LaunchOptions;
using process_internal::LaunchWhat;
using process_internal::Zygote;
using process_internal::ZygoteMode;

std::string ProgramPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "constellation",
                      "/daemon/testing/node_test_program");
}

// Whether `pid` ends within `ms` (it is not our child: watched through a pidfd).
bool EndsWithin(pid_t pid, int ms) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;
  pollfd p{pidfd, POLLIN, 0};
  int ready = poll(&p, 1, ms);
  close(pidfd);
  return ready == 1;
}

bool Alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

// The live processes whose parent is `parent`.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  const std::string ppid = std::to_string(parent);
  for (pid_t pid : constellation::testing::AllPids()) {
    std::vector<std::string> fields = constellation::testing::StatFields(pid);
    if (fields.size() > 1 && fields[1] == ppid && fields[0] != "Z") children.push_back(pid);
  }
  return children;
}

class NodeZygotesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<internal::LocalListener> listener = internal::ListenLocal("zygotes-test");
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *listener;
  }
  void TearDown() override {
    close(listener_.fd);
    internal::RemoveLocalListener(listener_);
  }

  // A launch of the test program: a spawned function's (`call`) or a root's.
  LaunchDescription Describe(bool call, std::vector<std::string> env = {}) {
    LaunchWhat what;
    what.path = ProgramPath();
    what.argv = {"node_test_program"};
    what.env = std::move(env);
    if (call) what.call.emplace().set_function(1);
    absl::StatusOr<LaunchDescription> launch =
        DescribeLaunch({.bridge = listener_.path, .cgroups = {}, .fabric = true}, std::move(what));
    EXPECT_TRUE(launch.ok()) << launch.status();
    return *std::move(launch);
  }

  // The OS pid of the next process that connects to the listener (the
  // spawn's monitor connects first), within 10 s; 0 if none.
  pid_t NextConnected() {
    pollfd p{listener_.fd, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) return 0;
    int conn = accept4(listener_.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return 0;
    absl::StatusOr<internal::PeerCredentials> peer = internal::PeerOf(conn);
    close(conn);
    return peer.ok() ? peer->pid : 0;
  }

  std::set<uint64_t> running_;  // what `runs` answers
  internal::LocalListener listener_;
  std::function<bool(uint64_t)> runs_ = [this](uint64_t d) { return running_.contains(d); };
};

TEST_F(NodeZygotesTest, AfterTheFirstLaunchTheDeploymentsSpawnedFunctionsFork) {
  NodeZygotes zygotes(ZygoteMode::kOn, pb::CgroupBase(), runs_);
  LaunchDescription first = Describe(true);
  EXPECT_FALSE(zygotes.Launch(7, first)) << "no zygote yet: the first launch executes";
  ASSERT_TRUE(zygotes.Start(7, first));
  pid_t zygote = zygotes.os_pid(7);
  ASSERT_TRUE(Alive(zygote));
  EXPECT_FALSE(zygotes.Start(7, first)) << "one per deployment";
  for (int i = 0; i < 3; ++i) {  // the spare, then forks while the next spare is made
    LaunchDescription launch = Describe(true);
    std::optional<absl::StatusOr<pid_t>> forked = zygotes.Launch(7, launch);
    ASSERT_TRUE(forked.has_value());
    ASSERT_TRUE(forked->ok()) << forked->status();
    EXPECT_NE(**forked, zygote);
    EXPECT_EQ(NextConnected(), **forked) << "the pid answered is the process that connects";
  }
  EXPECT_EQ(zygotes.os_pid(7), zygote);
}

TEST_F(NodeZygotesTest, RootsOtherArgvAndOtherDeploymentsExecute) {
  NodeZygotes zygotes(ZygoteMode::kNoSpare, pb::CgroupBase(), runs_);
  EXPECT_FALSE(zygotes.Start(7, Describe(false))) << "a root's launch starts none: its deployment may never spawn";
  ASSERT_TRUE(zygotes.Start(7, Describe(true)));
  EXPECT_FALSE(zygotes.Launch(7, Describe(false))) << "a root returns into main(): never forked";
  LaunchDescription other_argv = Describe(true);
  other_argv.options.argv.push_back("exit");
  EXPECT_FALSE(zygotes.Launch(7, other_argv));
  EXPECT_FALSE(zygotes.Launch(7, Describe(true, {"X=1"}))) << "another environment";
  EXPECT_FALSE(zygotes.Launch(8, Describe(true))) << "another deployment's";
  EXPECT_TRUE(zygotes.Launch(7, Describe(true)));
}

TEST_F(NodeZygotesTest, TheDaemonOrTheDeploymentCanTurnThemDown) {
  NodeZygotes off(ZygoteMode::kOff, pb::CgroupBase(), runs_);
  EXPECT_FALSE(off.Start(7, Describe(true)));
  NodeZygotes on(ZygoteMode::kOn, pb::CgroupBase(), runs_);
  EXPECT_FALSE(on.Start(7, Describe(true, {"CONSTELLATION_ZYGOTE=off"})));
  EXPECT_FALSE(on.Start(8, Describe(true, {"CONSTELLATION_ZYGOTE=bogus"}))) << "not understood: none";
  EXPECT_TRUE(on.Start(9, Describe(true, {"CONSTELLATION_ZYGOTE=no-spare"})));
  EXPECT_EQ(on.size(), 1u);
}

TEST_F(NodeZygotesTest, EndingADeploymentEndsItsZygoteAndSpare) {
  NodeZygotes zygotes(ZygoteMode::kOn, pb::CgroupBase(), runs_);
  ASSERT_TRUE(zygotes.Start(7, Describe(true)));
  pid_t zygote = zygotes.os_pid(7);
  std::vector<pid_t> spares;
  for (int i = 0; i < 1000 && spares.empty(); ++i) {  // the zygote forks its spare once it has started
    spares = ChildrenOf(zygote);
    if (spares.empty()) usleep(10000);
  }
  ASSERT_EQ(spares.size(), 1u) << "the zygote keeps one spare";
  zygotes.End(7);
  EXPECT_EQ(zygotes.os_pid(7), 0);
  EXPECT_TRUE(EndsWithin(zygote, 10000)) << "the zygote outlived its deployment";
  EXPECT_TRUE(EndsWithin(spares[0], 10000)) << "its spare outlived it";
  EXPECT_FALSE(zygotes.Launch(7, Describe(true)));
}

TEST_F(NodeZygotesTest, AtTheLimitOneOfADeploymentThatRunsNothingHereMakesWay) {
  NodeZygotes zygotes(ZygoteMode::kNoSpare, pb::CgroupBase(), runs_, /*max=*/1);
  running_ = {1};
  ASSERT_TRUE(zygotes.Start(1, Describe(true)));
  EXPECT_FALSE(zygotes.Start(2, Describe(true))) << "deployment 1 still runs here: no room";
  pid_t first = zygotes.os_pid(1);
  running_.clear();
  EXPECT_TRUE(zygotes.Start(2, Describe(true)));
  EXPECT_EQ(zygotes.os_pid(1), 0);
  EXPECT_TRUE(EndsWithin(first, 10000));
}

TEST_F(NodeZygotesTest, AZygoteThatIsGoneLeavesLaunchesToExec) {
  NodeZygotes zygotes(ZygoteMode::kNoSpare, pb::CgroupBase(), runs_);
  ASSERT_TRUE(zygotes.Start(7, Describe(true)));
  pid_t zygote = zygotes.os_pid(7);
  ASSERT_EQ(kill(zygote, SIGKILL), 0);
  ASSERT_TRUE(EndsWithin(zygote, 10000));
  EXPECT_FALSE(zygotes.Launch(7, Describe(true))) << "the launch executes instead";
  EXPECT_FALSE(zygotes.Launch(7, Describe(true)));
}

// The node's cgroup base outlives a deployment's zygote: a spare ended with
// its deployment removes its leaf and leaves the base to the daemon. When the
// daemon dies instead (its end of the socket closes without a word), the
// spare removes the base too if its leaf was the last, as monitors do
// (lib/process/monitor.h), so that no base of a dead daemon is left behind.
TEST_F(NodeZygotesTest, ASpareRemovesTheBaseOnlyWhenTheDaemonDied) {
  internal::CgroupSetup setup = internal::CreateCgroupBase(internal::ReadCgroupLayout(), nullptr);
  if (!setup.why_not.ok() || setup.base.version() != 1) {
    if (setup.why_not.ok()) internal::RemoveCgroupBase(setup.base);
    GTEST_SKIP() << "needs cgroup v1 (v2 bases wait for the next launcher's sweep): " << setup.why_not;
  }
  const std::filesystem::path base = setup.base.memory();
  auto leaf_of = [&](pid_t spare) { return base / absl::StrCat("p", spare); };
  auto spare_with_leaf = [&](pid_t zygote) -> pid_t {  // waits up to 10 s for the spare and its leaf
    for (int i = 0; i < 1000; ++i) {
      std::vector<pid_t> spares = ChildrenOf(zygote);
      if (spares.size() == 1 && std::filesystem::exists(leaf_of(spares[0]))) return spares[0];
      usleep(10000);
    }
    return 0;
  };
  LaunchDescription launch = Describe(true);
  const LaunchOptions& options = launch.options;
  {
    NodeZygotes zygotes(ZygoteMode::kOn, setup.base, runs_);
    ASSERT_TRUE(zygotes.Start(7, launch));
    pid_t spare = spare_with_leaf(zygotes.os_pid(7));
    ASSERT_GT(spare, 0);
    zygotes.End(7);
    EXPECT_TRUE(EndsWithin(spare, 10000));
    EXPECT_FALSE(std::filesystem::exists(leaf_of(spare)));
    EXPECT_TRUE(std::filesystem::exists(base)) << "the daemon's base went with a deployment's zygote";
  }
  // A "daemon" that starts a zygote and dies.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t daemon = fork();
  if (daemon == 0) {
    absl::StatusOr<std::unique_ptr<Zygote>> zygote = Zygote::Exec(options);
    if (!zygote.ok()) _exit(1);
    (*zygote)->KeepSpares(setup.base);
    pid_t spare = spare_with_leaf((*zygote)->os_pid());
    if (write(ready[1], &spare, sizeof(spare)) != sizeof(spare)) _exit(1);
    _exit(spare > 0 ? 0 : 1);  // no destructor: its socket closes without a word
  }
  close(ready[1]);
  pid_t spare = 0;
  EXPECT_EQ(read(ready[0], &spare, sizeof(spare)), static_cast<ssize_t>(sizeof(spare)));
  close(ready[0]);
  int status = 0;
  ASSERT_EQ(waitpid(daemon, &status, 0), daemon);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GT(spare, 0);
  EXPECT_TRUE(EndsWithin(spare, 10000));
  bool removed = false;
  for (int i = 0; i < 1000 && !removed; ++i) {  // the spare removes it as it ends
    removed = !std::filesystem::exists(base);
    if (!removed) usleep(10000);
  }
  EXPECT_TRUE(removed) << "a dead daemon's base was left behind: " << base;
  if (!removed) internal::RemoveCgroupBase(setup.base);
}

// An executed zygote is not the daemon's own code: one that answers with a
// process that is not its child (here a script that names init) is killed,
// and the launch fails, rather than the daemon taking that process for the
// spawn's monitor (to admit, watch and kill).
TEST_F(NodeZygotesTest, AZygoteThatNamesAProcessNotItsChildIsKilledAndTheLaunchFails) {
  LaunchDescription launch = Describe(true);
  LaunchOptions liar = launch.options;
  liar.path = "/usr/bin/python3";
  liar.argv = {"python3", "-c",
               "import os, socket, struct\n"
               "s = socket.socket(fileno=int(os.environ['CONSTELLATION_ZYGOTE_FD']))\n"
               "while True:\n"
               "    m, _, _, _ = s.recvmsg(9000, socket.CMSG_SPACE(64))\n"
               "    if not m: break\n"
               "    if m[:1] == b'L': s.send(struct.pack('q', 1))\n"};
  if (access(liar.path.c_str(), X_OK) != 0) GTEST_SKIP() << "no " << liar.path;
  absl::StatusOr<std::unique_ptr<Zygote>> zygote = Zygote::Exec(liar);
  ASSERT_TRUE(zygote.ok()) << zygote.status();
  pid_t pid = (*zygote)->os_pid();
  absl::StatusOr<pid_t> forked = (*zygote)->Launch(launch.info);
  EXPECT_TRUE(absl::IsInternal(forked.status())) << forked.status();
  EXPECT_NE(forked.status().message().find("not its child"), std::string::npos) << forked.status();
  EXPECT_TRUE(EndsWithin(pid, 10000)) << "the lying zygote was not killed";
  EXPECT_TRUE(absl::IsUnavailable((*zygote)->Launch(launch.info).status()));
}

// A zygote that does not answer (stopped here) fails the launch within the
// bound, and is killed: it cannot hold a launch, or the daemon's thread.
TEST_F(NodeZygotesTest, AZygoteThatDoesNotAnswerIsKilledAndTheLaunchFails) {
  LaunchDescription launch = Describe(true);
  absl::StatusOr<std::unique_ptr<Zygote>> zygote = Zygote::Exec(launch.options);
  ASSERT_TRUE(zygote.ok()) << zygote.status();
  pid_t pid = (*zygote)->os_pid();
  (*zygote)->set_answer_timeout_ms(300);
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  absl::StatusOr<pid_t> forked = (*zygote)->Launch(launch.info);
  EXPECT_TRUE(absl::IsDeadlineExceeded(forked.status())) << forked.status();
  EXPECT_TRUE(EndsWithin(pid, 10000)) << "the stuck zygote was not killed";
  EXPECT_FALSE((*zygote)->Serves(launch.options));
  EXPECT_TRUE(absl::IsUnavailable((*zygote)->Launch(launch.info).status()));
}

}  // namespace
}  // namespace constellation::daemon
