// Monitors and links in local mode (issue 14, item 2): every Down reason, a
// link terminating its process, trapped exits, a normal exit that does not
// terminate. The program is tests/local/monitor_scenarios.cc.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/program.h"
#include "tests/harness/run.h"
#include "tests/harness/spawn.h"
#include "tests/harness/trace.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr int kLinkedExitCode = 79;  // lib/process/down.h

RunResult RunMonitors(std::vector<std::string> args) {
  RunOptions options;
  options.args = std::move(args);
  RunChecks checks;
  checks.what = absl::StrCat("monitor scenario \"", absl::StrJoin(options.args, " "), "\"");
  Program program(RunfilePath("tests/local/monitor_scenarios"), std::move(options));
  return Finish(program, checks);
}

std::string ChildPid(const RunResult& r) {
  const ProcessRecord& root = r.trace.Root();
  return root.children.empty() ? "?" : root.children[0];
}

TEST(MonitorTest, ExitedWithItsCode) {
  RunResult r = RunMonitors({"monitor_exit", "3"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_EQ(r.trace.Root().out, "down exited 3 abnormal\nprocess " + ChildPid(r) +
                                    " exited with code 3\nagain down exited 3 abnormal\nprocess " + ChildPid(r) +
                                    " exited with code 3\n")
      << r.Dump();
}

TEST(MonitorTest, AsyncWaitAndSelectAsync) {
  RunResult r = RunMonitors({"monitor_async", "5"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  ASSERT_THAT(r.trace.Root().children, SizeIs(2)) << r.Dump();
  EXPECT_EQ(r.trace.Root().out, "down exited 5 abnormal\nprocess " + r.trace.Root().children[0] +
                                    " exited with code 5\nselect 0\ndown exited 0 normal\nprocess " +
                                    r.trace.Root().children[1] + " exited with code 0\n")
      << r.Dump();
}

TEST(MonitorTest, Signaled) {
  RunResult r = RunMonitors({"monitor_signal"});
  EXPECT_EQ(r.trace.Root().out,
            "down signaled 9 abnormal\nprocess " + ChildPid(r) + " was killed by signal 9 (SIGKILL)\n")
      << r.Dump();
}

TEST(MonitorTest, OutOfMemory) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer build sets no memory limits (lib/process/cgroup.h CgroupLimitsApplied)";
#endif
  RunResult r = RunMonitors({"monitor_oom"});
  if (absl::StrContains(r.err, "not enforced")) GTEST_SKIP() << "no cgroups here: " << r.err;
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_EQ(r.trace.Root().out, "down out_of_memory abnormal\nprocess " + ChildPid(r) +
                                    " ran out of memory (exceeded its memory limit of 64 MiB)\n")
      << r.Dump();
}

TEST(MonitorTest, NoProcess) {
  RunResult r = RunMonitors({"monitor_noprocess"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_THAT(r.trace.Root().out, StartsWith("down no_process abnormal\nprocess ")) << r.Dump();
  EXPECT_THAT(r.trace.Root().out, HasSubstr(" does not exist in this program")) << r.Dump();
}

TEST(MonitorTest, APeerAlreadyReportedIsReadyAtOnce) {
  RunResult r = RunMonitors({"monitor_peer"});
  EXPECT_EQ(r.trace.Root().out, "got 42, then an error\nready at once\ndown exited 2 abnormal\nprocess " + ChildPid(r) +
                                    " exited with code 2\n")
      << r.Dump();
}

TEST(MonitorTest, MonitoringItselfAborts) {
  RunResult r = RunMonitors({"monitor_self"});
  EXPECT_EQ(r.trace.Root().ExitString(), "signal SIGABRT") << r.Dump();
  EXPECT_THAT(r.trace.Root().err, HasSubstr("monitor() of pid(): a process cannot wait for its own end")) << r.Dump();
  EXPECT_EQ(r.trace.Root().out, "");
}

TEST(LinkTest, AnAbnormalExitTerminatesTheLinkedProcess) {
  RunResult r = RunMonitors({"link", "3"});
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.ExitString(), absl::StrCat("code ", kLinkedExitCode)) << r.Dump();
  EXPECT_EQ(root.out, "linked\n") << r.Dump();
  EXPECT_EQ(root.err, "constellation: terminating: linked process " + ChildPid(r) +
                          " exited with code 3 (call trap_exits(true) to receive it as a Down instead)\n")
      << r.Dump();
  // The bridge's rule: the first failure (the child's) decides.
  EXPECT_EQ(r.exit.ToString(), "exit code 3");
}

TEST(LinkTest, ANormalExitDoesNotTerminate) {
  RunResult r = RunMonitors({"link", "0"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_EQ(r.trace.Root().out,
            "linked\ndown exited 0 normal\nprocess " + ChildPid(r) + " exited with code 0\nstill running\n")
      << r.Dump();
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
}

TEST(LinkTest, TrappedExitsArriveAsADown) {
  RunResult r = RunMonitors({"trap", "3"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_EQ(r.trace.Root().out,
            "linked\ndown exited 3 abnormal\nprocess " + ChildPid(r) + " exited with code 3\nstill running\n")
      << r.Dump();
  EXPECT_EQ(r.trace.Root().err, "");
}

}  // namespace
}  // namespace constellation::testing
