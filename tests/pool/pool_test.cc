// The process pool through the local runtime (issue 14, item 3): results of
// many tasks, futures awaited by coroutines and select, a worker killed and
// replaced with its task retried, the attempt bound, and no worker outliving
// the pool. Each test runs tests/pool/scenarios under the bridge.
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/program.h"
#include "tests/harness/run.h"
#include "tests/harness/spawn.h"
#include "tests/harness/trace.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

RunResult RunPoolScenario(std::vector<std::string> args, std::string capacity = "") {
  RunOptions options;
  options.args = std::move(args);
  if (!capacity.empty()) options.env.emplace_back("CONSTELLATION_CAPACITY", capacity);
  RunChecks checks;
  checks.what = absl::StrCat("pool scenario ", options.args[0]);
  Program program(RunfilePath("tests/pool/scenarios"), std::move(options));
  return Finish(program, checks);
}

// The workers that ended by `signal` ("" for those that exited), among the root's children.
int CountChildren(const Trace& trace, const std::string& exit) {
  int n = 0;
  for (const std::string& child : trace.Root().children) n += trace.Find(child)->ExitString() == exit ? 1 : 0;
  return n;
}

TEST(Pool, ManyTasks) {
  RunResult r = RunPoolScenario({"many"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  // sum of i*i for i < 200
  EXPECT_THAT(r.trace.Results(), ElementsAre("sum 2646700", "counts a=4 b=2 title=-1", "lambda x7")) << r.Dump();
  EXPECT_EQ(CountChildren(r.trace, "code 0"), 4) << r.Dump();
}

TEST(Pool, CoroutinesAndSelect) {
  RunResult r = RunPoolScenario({"co_await"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_THAT(r.trace.Results(), ElementsAre("coroutines 9 16 25 void-ok select 0=36", "select 0=81 try_get 81"))
      << r.Dump();
}

TEST(Pool, KilledWorkerIsReplacedAndTheTaskRetried) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  ASSERT_NE(tmp, nullptr);
  std::string marker = absl::StrCat(tmp, "/crash_once_marker");
  RunResult r = RunPoolScenario({"retry_once", marker});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_THAT(r.trace.Results(), ElementsAre("retried 42", "after 4")) << r.Dump();
  EXPECT_EQ(CountChildren(r.trace, "signal SIGKILL"), 1) << r.Dump();
  EXPECT_EQ(CountChildren(r.trace, "code 0"), 1) << r.Dump();
}

TEST(Pool, TaskThatAlwaysCrashesFailsAfterTheBound) {
  RunResult r = RunPoolScenario({"always_crash"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  std::vector<std::string> results = r.trace.Results();
  ASSERT_EQ(results.size(), 2u) << r.Dump();
  EXPECT_THAT(results[0],
              HasSubstr("error UNAVAILABLE: process pool: the task's worker died 3 times; the last: process "));
  EXPECT_THAT(results[0], HasSubstr("was killed by signal 9 (SIGKILL)"));
  EXPECT_EQ(results[1], "still works 9");
  EXPECT_EQ(CountChildren(r.trace, "signal SIGKILL"), 3) << r.Dump();
  EXPECT_EQ(CountChildren(r.trace, "code 0"), 2) << r.Dump();
}

// Room for the root and two workers: the pool must serve its tasks with
// those while its other spawns wait for room, not wait for them first.
TEST(Pool, WorksWhileSomeWorkersWaitForRoom) {
  RunResult r = RunPoolScenario({"short_of_room"}, "350 MiB,4");
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_THAT(r.trace.Results(), ElementsAre("sum 2470")) << r.Dump();
  EXPECT_EQ(CountChildren(r.trace, "code 0"), 4) << r.Dump();
}

TEST(Pool, DestroyedPoolLeavesNoWorkers) {
  RunResult r = RunPoolScenario({"no_orphans"});
  EXPECT_EQ(r.trace.Root().ExitString(), "code 0") << r.Dump();
  EXPECT_THAT(r.trace.Results(), ElementsAre("workers gone all")) << r.Dump();
  EXPECT_EQ(CountChildren(r.trace, "code 0"), 3) << r.Dump();
}

}  // namespace
}  // namespace constellation::testing
