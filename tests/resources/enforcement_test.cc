// Issue 7, items 2 and 3: each process in its own cgroup with its declared
// memory limit and CPU quota; a process over its memory is killed by the
// kernel and reported as such while its siblings and parent finish; exit
// events carry peak memory and CPU time; the fallback when cgroups are not
// usable warns; cgroups go away, also when the bridge is SIGKILLed.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/spawn.h"
#include "tests/resources/resource_run.h"

namespace constellation::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

class EnforcementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = CgroupsUnavailable();
    if (!why.empty()) GTEST_SKIP() << "cgroup enforcement cannot be tested here: " << why;
  }
};

TEST_F(EnforcementTest, EachProcessGetsItsOwnCgroupWithItsLimits) {
  pid_t bridge = 0;
  RunResult run = RunResourceProgram({"where"}, {}, "json", &bridge);
  ASSERT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  const ProcessRecord& root = run.trace.Root();
  ASSERT_THAT(root.children, SizeIs(3)) << run.Dump();
  const ProcessRecord& child = *run.trace.Find(root.children[0]);
  const ProcessRecord& same = *run.trace.Find(root.children[1]);
  const ProcessRecord& other = *run.trace.Find(root.children[2]);
  std::string base_mem = absl::StrCat(OwnMemoryCgroup(), "/constellation-", bridge, "/p");
  std::string base_cpu = absl::StrCat(OwnCpuCgroup(), "/constellation-", bridge, "/p");
  // resources() is what was given; the cgroup is a leaf of its own under the bridge's base.
  EXPECT_THAT(root.out, HasSubstr("root resources 50331648 0.5\n"));
  EXPECT_THAT(root.out, ContainsRegex("root cgroup memory=" + base_mem + "[0-9]+ cpu=" + base_cpu + "[0-9]+\n"));
  EXPECT_THAT(root.out, HasSubstr("root limits mem=50331648 quota=125000 period=250000\n"));
  EXPECT_THAT(child.out, HasSubstr("child resources 67108864 0.25\n"));
  EXPECT_THAT(child.out, ContainsRegex("child cgroup memory=" + base_mem + "[0-9]+ cpu=" + base_cpu + "[0-9]+\n"));
  EXPECT_THAT(child.out, HasSubstr("child limits mem=67108864 quota=62500 period=250000\n"));
  // A spare limited ahead as the spawn before it asked: right for "same",
  // wrong (and rewritten before any user code) for "other".
  EXPECT_THAT(same.out, HasSubstr("same limits mem=67108864 quota=62500 period=250000\n"));
  EXPECT_THAT(other.out, HasSubstr("other resources 83886080 0.5\n"));
  EXPECT_THAT(other.out, HasSubstr("other limits mem=83886080 quota=125000 period=250000\n"));
  std::smatch a, b;
  static const std::regex kLeaf("cgroup memory=(\\S+)");
  ASSERT_TRUE(std::regex_search(root.out, a, kLeaf) && std::regex_search(child.out, b, kLeaf));
  EXPECT_NE(a[1].str(), b[1].str()) << "two processes share a cgroup";
  // Gone with the bridge.
  EXPECT_TRUE(WaitBaseGone(OwnMemoryCgroup(), bridge, 0));
  EXPECT_TRUE(WaitBaseGone(OwnCpuCgroup(), bridge, 0));
}

TEST_F(EnforcementTest, OverItsMemoryIsKilledAndReportedWhileOthersFinish) {
  RunResult run = RunResourceProgram({"oom", "64"});
  const ProcessRecord& root = run.trace.Root();
  ASSERT_THAT(root.children, SizeIs(3)) << run.Dump();
  const ProcessRecord& hog = *run.trace.Find(root.children[2]);
  EXPECT_EQ(hog.ExitString(), "signal SIGKILL") << run.Dump();
  EXPECT_TRUE(hog.memory_exceeded) << run.Dump();
  EXPECT_EQ(hog.error, "exceeded its memory limit of 64 MiB");
  EXPECT_THAT(hog.out, Not(HasSubstr("hog survived")));
  // Its siblings and its parent are untouched.
  for (int i = 0; i < 2; ++i) EXPECT_EQ(run.trace.Find(root.children[i])->ExitString(), "code 0") << run.Dump();
  EXPECT_EQ(root.ExitString(), "code 0") << run.Dump();
  EXPECT_THAT(root.out, ContainsRegex("hog: UNAVAILABLE: .*\nsibling 0 ok\nsibling 1 ok\n"
                                      "monitor: process [0-9a-f]+ ran out of memory"));
  // The bridge's rule: the first failure (the hog's SIGKILL) gives 137.
  EXPECT_EQ(run.exit.ToString(), "exit code 137");
  // Peak memory reaches the limit, and not the 128 MiB it tried (resident
  // pages of the binary itself count in the peak, not in the cgroup).
  ASSERT_TRUE(hog.peak_mem.has_value());
  EXPECT_GT(*hog.peak_mem, 48.0 * (1 << 20));
  EXPECT_LT(*hog.peak_mem, 100.0 * (1 << 20));
}

TEST_F(EnforcementTest, HumanFormatSaysWhyItWasKilled) {
  RunResult run = RunResourceProgram({"oom", "64"}, {}, std::nullopt);
  EXPECT_THAT(run.out, HasSubstr("   killed: exceeded its memory limit of 64 MiB\n")) << run.out;
  EXPECT_THAT(run.out, Not(HasSubstr("SIGKILL")));
}

TEST_F(EnforcementTest, BridgeKilledLeavesNoCgroupBehind) {
  RunOptions options;
  options.args = {"block"};
  Program program(RunfilePath("tests/resources/resource_programs"), options);
  std::string line;
  bool up = false;
  while (!up && program.NextLine(&line)) up = line.find(absl::Base64Escape("child up\n")) != std::string::npos;
  ASSERT_TRUE(up) << program.stdout_text() << program.stderr_text();
  std::string base = absl::StrCat(OwnMemoryCgroup(), "/constellation-", program.os_pid());
  ASSERT_EQ(access(base.c_str(), F_OK), 0) << base << " should exist while the program runs";
  program.Signal(SIGKILL);
  program.Wait();
  // The monitors see the bridge go, kill their processes and clean up.
  EXPECT_THAT(program.WaitGroupEmpty(absl::Seconds(10)), IsEmpty());
  EXPECT_TRUE(WaitBaseGone(OwnMemoryCgroup(), program.os_pid(), 10)) << base;
  EXPECT_TRUE(WaitBaseGone(OwnCpuCgroup(), program.os_pid(), 10));
}

TEST_F(EnforcementTest, StaleBasesOfDeadLaunchersAreSwept) {
  // A base named after a process that no longer runs, with an empty leaf.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  waitpid(dead, nullptr, 0);
  std::string stale = absl::StrCat(OwnMemoryCgroup(), "/constellation-", dead);
  ASSERT_EQ(mkdir(stale.c_str(), 0755), 0) << stale;
  ASSERT_EQ(mkdir((stale + "/p1").c_str(), 0755), 0);
  RunResult run = RunResourceProgram({"where"});
  EXPECT_EQ(run.exit.ToString(), "exit code 0");
  EXPECT_NE(access(stale.c_str(), F_OK), 0) << stale << " was left behind";
  rmdir((stale + "/p1").c_str());
  rmdir(stale.c_str());
}

TEST(FallbackTest, WithoutUsableCgroupsTheBridgeWarnsAndUsesSetrlimit) {
  // v2 has no memory and cpu controllers on these machines, so asking for it
  // alone is what a machine without writable cgroups looks like.
  RunResult run = RunResourceProgram({"where"}, {{"CONSTELLATION_CGROUPS", "v2"}});
  EXPECT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  EXPECT_THAT(run.err, ContainsRegex("warning: processes' resources are not enforced with cgroups \\(.+\\); memory "
                                     "is limited with setrlimit\\(RLIMIT_DATA\\) and CPU is not limited"));
  EXPECT_THAT(run.trace.Root().out, HasSubstr("root rlimit data=50331648\n"));
  EXPECT_THAT(run.trace.Root().out, Not(HasSubstr("/constellation-")));
  // Spawned ones too, each with its own (applied once its spawn came, when
  // the process was forked ahead as a spare).
  const std::vector<std::string>& children = run.trace.Root().children;
  ASSERT_THAT(children, SizeIs(3)) << run.Dump();
  EXPECT_THAT(run.trace.Find(children[0])->out, HasSubstr("child rlimit data=67108864\n"));
  EXPECT_THAT(run.trace.Find(children[2])->out, HasSubstr("other rlimit data=83886080\n"));
}

TEST(FallbackTest, TurnedOffOnPurposeIsQuiet) {
  RunResult run = RunResourceProgram({"where"}, {{"CONSTELLATION_CGROUPS", "off"}});
  EXPECT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  EXPECT_EQ(run.err, "");
  EXPECT_THAT(run.trace.Root().out, Not(HasSubstr("/constellation-")));
}

TEST(FallbackTest, UnknownModeIsAnError) {
  RunResult run = RunResourceProgram({"where"}, {{"CONSTELLATION_CGROUPS", "v3"}}, std::nullopt);
  EXPECT_EQ(run.exit.ToString(), "exit code 2");
  EXPECT_THAT(run.err, HasSubstr("CONSTELLATION_CGROUPS=v3 is not a mode: use auto (the default), v2, v1 or off"));
}

TEST(ReportingTest, EveryExitCarriesPeakMemoryAndCpuTime) {
  RunResult run = RunResourceProgram({"where"});
  for (const auto& [pid, p] : run.trace.processes) {
    ASSERT_TRUE(p.peak_mem.has_value() && p.cpu_time.has_value()) << pid << "\n" << run.Dump();
    EXPECT_GT(*p.peak_mem, 512.0 * 1024) << pid;
    EXPECT_LT(*p.peak_mem, 512.0 * 1024 * 1024) << pid;
    EXPECT_GT(*p.cpu_time, 0) << pid;
    EXPECT_LT(*p.cpu_time, 30) << pid;
  }
}

TEST(ReportingTest, VerboseHumanFormatShowsThem) {
  RunResult quiet = RunResourceProgram({"where"}, {}, std::nullopt);
  EXPECT_THAT(quiet.out, Not(HasSubstr("peak memory")));
  RunResult verbose = RunResourceProgram({"where"}, {{"CONSTELLATION_VERBOSE", "1"}}, std::nullopt);
  EXPECT_THAT(verbose.out, ContainsRegex("   exited \\[peak memory [0-9.]+ [KM]iB, cpu [0-9]+\\.[0-9]{3} s\\]\n"))
      << verbose.out;
}

// Last in this binary, and a check over every run before it in the suite:
// no base of a launcher that has ended is left in either hierarchy.
TEST(ZzLeftoversTest, NoCgroupLeftBehind) {
  for (const std::string& dir : {OwnMemoryCgroup(), OwnCpuCgroup()}) {
    if (dir.empty()) continue;
    EXPECT_THAT(StaleBases(dir), IsEmpty()) << "in " << dir;
  }
}

}  // namespace
}  // namespace constellation::testing
