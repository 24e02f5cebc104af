// Issue 7, item 1: local mode's machine is a one-node cluster. try_spawn
// fails at once when a request does not fit what is left, spawn() waits until
// an exit frees room, the root's init() resources count, and the reference
// scenario: 49 processes of 1 GiB and 0.5 GiB against 2 GiB.
#include <map>
#include <regex>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/resources/resource_run.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr double kMiB = 1 << 20;

TEST(AccountingTest, TrySpawnFailsAtOnceWhenFullAndSpawnWaitsForAnExit) {
  RunResult run = RunResourceProgram({"capacity"}, {{"CONSTELLATION_CAPACITY", "1 GiB,4"}});
  ASSERT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  const ProcessRecord& root = run.trace.Root();
  std::vector<std::string> lines = Lines(root.out);
  // 256 MiB root + three 256 MiB holders = 1 GiB.
  ASSERT_THAT(lines, SizeIs(8)) << run.Dump();
  EXPECT_EQ(lines[0], "placed 3");
  std::smatch m;
  static const std::regex kFailed("try_spawn failed: ResourceExhausted in ([0-9]+) ms");
  ASSERT_TRUE(std::regex_match(lines[1], m, kFailed)) << lines[1];
  EXPECT_LT(std::stoi(m[1]), 1000) << "try_spawn must not wait";
  EXPECT_EQ(lines[2], "spawn waiting while full");
  ASSERT_TRUE(
      std::regex_match(lines[3], m, std::regex("try_spawn while a spawn waits: ResourceExhausted in ([0-9]+) ms")))
      << lines[3];
  EXPECT_LT(std::stoi(m[1]), 1000) << "another thread's waiting spawn() held up try_spawn";
  EXPECT_EQ(lines[4], "waiting spawn: ok");
  EXPECT_EQ(lines[5], "try_spawn when full again: ResourceExhausted");
  EXPECT_EQ(lines[6], "spawn of 2 GiB: ResourceExhausted") << "more than the capacity fails at once, never waits";
  EXPECT_EQ(lines[7], "done");
  // The waited-for holder started only after holder 0 exited.
  const ProcessRecord* holder0 = nullptr;
  const ProcessRecord* waited = nullptr;
  for (const std::string& child : root.children) {
    const ProcessRecord* p = run.trace.Find(child);
    EXPECT_EQ(p->ExitString(), "code 0") << run.Dump();
    if (p->out.rfind("holder 0 up", 0) == 0) holder0 = p;
    if (p->out.rfind("holder 100 up", 0) == 0) waited = p;
  }
  ASSERT_NE(holder0, nullptr) << run.Dump();
  ASSERT_NE(waited, nullptr) << run.Dump();
  EXPECT_GT(waited->spawn_line, holder0->exit_line) << run.Dump();
}

// Walks the trace in order, adding a process's memory at its spawn line and
// taking it away at its exit line; returns the most ever held at once.
double PeakHeld(const Trace& trace, const std::map<std::string, double>& mem) {
  double held = 0, peak = 0;
  for (const Event& e : trace.events) {
    if (e.type == Event::kSpawn) held += mem.at(e.child);
    if (e.type == Event::kExit && mem.contains(e.pid)) held -= mem.at(e.pid);
    peak = std::max(peak, held);
  }
  return peak;
}

TEST(AccountingTest, ReferenceScenario49ProcessesAgainst2GiB) {
  RunResult run = RunResourceProgram({"reference"}, {{"CONSTELLATION_CAPACITY", "2 GiB,2"}});
  ASSERT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  EXPECT_THAT(run.trace.processes, SizeIs(49));
  const ProcessRecord& root = run.trace.Root();
  // 512 MiB root: a 1 GiB and a 0.5 GiB process fill the rest, exactly.
  EXPECT_THAT(Lines(root.out), ElementsAre("placed 2, then ResourceExhausted",
                                           "try_spawn of 0.5 GiB when full: ResourceExhausted", "workers 46 sum 1035"));
  std::map<std::string, double> mem;
  static const std::regex kWorker("worker ([0-9]+) mem ([0-9]+)\n");
  static const std::regex kHolder("holder ([0-9]+) up\n");
  for (const std::string& child : root.children) {
    const ProcessRecord* p = run.trace.Find(child);
    EXPECT_EQ(p->ExitString(), "code 0") << p->out << p->err;
    std::smatch m;
    if (std::regex_search(p->out, m, kWorker)) {
      double want = std::stoi(m[1]) % 2 == 0 ? 1024 * kMiB : 512 * kMiB;
      EXPECT_EQ(std::stod(m[2]), want) << "resources() in worker " << m[1];
      mem[child] = want;
    } else if (std::regex_search(p->out, m, kHolder)) {
      mem[child] = std::stoi(m[1]) % 2 == 0 ? 1024 * kMiB : 512 * kMiB;
    } else {
      ADD_FAILURE() << "unexpected child output: " << p->out;
    }
  }
  EXPECT_THAT(mem, SizeIs(48));
  // Never more than the capacity left beside the root, and full at times.
  double peak = PeakHeld(run.trace, mem);
  EXPECT_LE(peak, 1536 * kMiB);
  EXPECT_EQ(peak, 1536 * kMiB);
}

TEST(AccountingTest, SpawnThatCouldOnlyWaitForeverFails) {
  // The root holds 100 MiB of 150: a 100 MiB child fits only if the root
  // exits, and the root is the one waiting.
  RunResult run = RunResourceProgram({"waitforever"}, {{"CONSTELLATION_CAPACITY", "150 MiB,1"}});
  EXPECT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  EXPECT_EQ(run.trace.Root().out, "spawn: ResourceExhausted\n");
}

TEST(AccountingTest, RootBiggerThanTheMachineIsAClearError) {
  RunResult run = RunResourceProgram({"reference"}, {{"CONSTELLATION_CAPACITY", "256 MiB,2"}}, std::nullopt);
  EXPECT_EQ(run.exit.ToString(), "exit code 2");
  EXPECT_THAT(run.err, HasSubstr("init() asks for mem 512 MiB, cpu 0.25 but this machine offers mem 256 MiB, cpu 2 "
                                 "(set CONSTELLATION_CAPACITY to change that)"));
  EXPECT_EQ(run.out, "");
}

TEST(AccountingTest, BadCapacityIsAClearError) {
  for (const char* bad : {"8 GB,4", "8 GiB", "8 GiB,-1", "0 B,1", "lots"}) {
    RunResult run = RunResourceProgram({"where"}, {{"CONSTELLATION_CAPACITY", bad}}, std::nullopt);
    EXPECT_EQ(run.exit.ToString(), "exit code 2") << bad;
    EXPECT_THAT(run.err, HasSubstr(absl::StrCat("CONSTELLATION_CAPACITY=\"", bad, "\""))) << bad;
  }
}

TEST(AccountingTest, OversizedSpawnRequestIsRefusedAndTheProcessGoesOn) {
  RunResult run = RunResourceProgram({"bigargs"});
  EXPECT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  EXPECT_THAT(Lines(run.trace.Root().out),
              ElementsAre("61 MiB of arguments: INVALID_ARGUMENT: spawn request (arguments, argv and environment) "
                          "over the 60 MiB limit",
                          "1 MiB of arguments: ok"));
}

}  // namespace
}  // namespace constellation::testing
