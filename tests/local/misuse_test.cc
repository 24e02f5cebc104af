// API misuse aborts with a message that names the mistake (issue 3, item 1):
// calls before init(), a second init(), init() after a thread started.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Before init() there is no bridge: the program itself aborts.
void CheckAbortsBeforeInit(const std::string& scenario, const std::string& api) {
  SCOPED_TRACE(scenario);
  RunOptions options;
  options.args = {scenario};
  options.format = std::nullopt;  // no bridge, so no JSON to check
  RunResult r = RunScenario(options);
  EXPECT_EQ(r.exit.ToString(), "signal 6 (Aborted)");
  EXPECT_THAT(r.err, HasSubstr(api + " called before init()"));
  EXPECT_THAT(r.err, HasSubstr("call constellation::init() first in main()"));
  EXPECT_THAT(r.out, Not(HasSubstr("returned")));
}

TEST(Misuse, PidBeforeInitAborts) { CheckAbortsBeforeInit("pid_before_init", "pid()"); }
TEST(Misuse, ResourcesBeforeInitAborts) { CheckAbortsBeforeInit("resources_before_init", "resources()"); }
TEST(Misuse, SpawnBeforeInitAborts) { CheckAbortsBeforeInit("spawn_before_init", "spawn()"); }
TEST(Misuse, TrySpawnBeforeInitAborts) { CheckAbortsBeforeInit("try_spawn_before_init", "spawn()"); }

TEST(Misuse, SecondInitAborts) {
  RunResult r = RunScenario({"init_twice"});
  // The root process aborts under its monitor: reported like any abort.
  EXPECT_EQ(r.exit.ToString(), "exit code 134");
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.ExitString(), "signal SIGABRT");
  EXPECT_EQ(root.out, "calling init() again\n");
  EXPECT_THAT(root.err, HasSubstr("init() called twice"));
}

TEST(Misuse, InitAfterThreadStartedAborts) {
  RunOptions options;
  options.args = {"init_after_thread"};
  options.format = std::nullopt;
  RunResult r = RunScenario(options);
  EXPECT_EQ(r.exit.ToString(), "signal 6 (Aborted)");
  EXPECT_THAT(r.err, HasSubstr("init() called after threads were started"));
  EXPECT_THAT(r.out, IsEmpty());
}

}  // namespace
}  // namespace constellation::testing
