// Signals (issue 3, items 3, 4 and 6): a child killed with SIGKILL, a monitor
// that dies, and SIGTERM / SIGINT to the bridge leaving no process behind,
// checked by OS pid.
#include <errno.h>
#include <signal.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(Signal, ChildKilledWithSigkill) {
  RunResult r = RunScenario({"kill_child"});
  EXPECT_EQ(r.exit.ToString(), "exit code 137");
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.ExitString(), "code 0");
  ASSERT_THAT(root.children, SizeIs(1)) << r.trace.Dump();
  const ProcessRecord* child = r.trace.Find(root.children[0]);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->out, "about to die\n");
  EXPECT_EQ(child->ExitString(), "signal SIGKILL");
}

// The child kills its own monitor: the child must die with it, be reported
// as killed, and nothing may be left (RunScenario checks the process group).
TEST(Signal, ProcessDiesWithItsMonitor) {
  RunResult r = RunScenario({"kill_monitor"});
  EXPECT_EQ(r.exit.ToString(), "exit code 137");
  const ProcessRecord& root = r.trace.Root();
  ASSERT_THAT(root.children, SizeIs(1)) << r.trace.Dump();
  EXPECT_EQ(r.trace.Find(root.children[0])->ExitString(), "signal SIGKILL");
}

struct OsProcess {
  pid_t pid;
  uint64_t start_time;
  std::string what;
};

// Parses "os <pid> <monitor pid> <name>" lines.
std::vector<OsProcess> OsProcesses(const std::map<std::string, std::string>& out) {
  std::vector<OsProcess> found;
  for (const auto& [pid, text] : out) {
    for (const std::string& line : Lines(text)) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      int user = 0, monitor = 0;
      if (f.size() != 4 || f[0] != "os" || !absl::SimpleAtoi(f[1], &user) || !absl::SimpleAtoi(f[2], &monitor)) {
        ADD_FAILURE() << "unexpected line from " << pid << ": " << line;
        continue;
      }
      found.push_back({user, ProcessStartTime(user), absl::StrCat("user process ", f[3], " (", pid, ")")});
      found.push_back({monitor, ProcessStartTime(monitor), absl::StrCat("monitor of ", f[3], " (", pid, ")")});
    }
  }
  return found;
}

size_t CountOsLines(const std::map<std::string, std::string>& out) {
  size_t n = 0;
  for (const auto& [pid, text] : out) n += Lines(text).size();
  return n;
}

// Starts a binary tree of sleeping processes (every one prints its OS pid and
// its monitor's), sends `signal` to the bridge once all are up, and checks that
// when the bridge has exited none of those OS pids exists any more, not even
// as a zombie. With `root_exits` the root spawns its two children and returns
// at once, so only the six others are checked.
void CheckSignalLeavesNothing(int signal, bool root_exits) {
  RunOptions options;
  options.args = {"tree", "2"};  // 1 + 2 + 4 processes
  if (root_exits) options.args.push_back("root_exits");
  options.timeout = absl::Seconds(20);
  Program program(ScenarioPath(), options);
  EventReader reader(&program);
  const size_t kProcesses = root_exits ? 6 : 7;
  ASSERT_TRUE(reader.ReadUntil([&](const Event&) { return CountOsLines(reader.out) == kProcesses; }))
      << "not every process of the tree reported its OS pid";
  std::vector<OsProcess> os = OsProcesses(reader.out);
  ASSERT_THAT(os, SizeIs(2 * kProcesses));
  for (const OsProcess& p : os) {
    ASSERT_NE(p.start_time, 0u) << p.what << " (OS pid " << p.pid << ") is not running before the signal";
    ASSERT_NE(ProcessState(p.pid), 'Z') << p.what;
  }

  program.Signal(signal);
  ExitStatus exit = program.Wait();
  EXPECT_EQ(exit.ToString(), absl::StrCat("exit code ", 128 + signal));
  // The bridge has exited (it is our unreaped zombie): nothing else may exist.
  for (const OsProcess& p : os) {
    uint64_t now = ProcessStartTime(p.pid);
    EXPECT_TRUE(now == 0 || now != p.start_time)
        << p.what << " (OS pid " << p.pid << ") still exists after the bridge exited, state " << ProcessState(p.pid);
  }
  EXPECT_THAT(program.GroupMembers(), IsEmpty());
  // What the bridge printed is still well-formed (it may or may not report
  // the killed processes' exits).
  for (const std::string& line : program.lines()) {
    absl::StatusOr<Event> event = ParseEvent(line);
    EXPECT_TRUE(event.ok()) << event.status();
  }
}

// The whole tree, root included, is alive and quiet when the signal comes.
TEST(Signal, SigtermToBridgeLeavesNoProcessBehind) { CheckSignalLeavesNothing(SIGTERM, false); }
TEST(Signal, SigintToBridgeLeavesNoProcessBehind) { CheckSignalLeavesNothing(SIGINT, false); }
// The root has exited; its descendants live on.
TEST(Signal, SigtermAfterRootExitedLeavesNoProcessBehind) { CheckSignalLeavesNothing(SIGTERM, true); }

// SIGTERM while the tree is still being spawned: processes that are starting,
// or whose spawn the bridge has not heard of yet, must not survive either.
void CheckSigtermWhileSpawning(bool root_exits) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    SCOPED_TRACE(absl::StrCat("attempt ", attempt));
    RunOptions options;
    options.args = {"tree", "3"};  // 15 sleeping processes
    if (root_exits) options.args.push_back("root_exits");
    options.timeout = absl::Seconds(20);
    Program program(ScenarioPath(), options);
    EventReader reader(&program);
    // Signal as soon as the first spawn line appears, on later attempts a
    // little further into the start-up.
    int spawns = 0;
    ASSERT_TRUE(reader.ReadUntil([&](const Event& e) { return e.type == Event::kSpawn && ++spawns > attempt * 3; }))
        << program.stdout_text() << program.stderr_text();
    program.Signal(SIGTERM);
    ExitStatus exit = program.Wait();
    EXPECT_EQ(exit.ToString(), "exit code 143");
    std::vector<pid_t> left = program.WaitGroupEmpty(absl::Seconds(5));
    EXPECT_THAT(left, IsEmpty()) << "processes of the program survived SIGTERM to the bridge";
  }
}

TEST(Signal, SigtermWhileSpawningLeavesNoProcessBehind) { CheckSigtermWhileSpawning(false); }
TEST(Signal, SigtermWhileSpawningAfterRootExitedLeavesNoProcessBehind) { CheckSigtermWhileSpawning(true); }

}  // namespace
}  // namespace constellation::testing
