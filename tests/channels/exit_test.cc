// Messages are never lost when the sender exits right after send() returned:
// return from the spawned function, exit(0), return from main / exit(0) in the
// root (relay_test.cc has the 3-deep relay). Afterwards recv reports
// kUnavailable instead of hanging.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

TEST(SendThenExit, ChildReturnsFromFunction) {
  RunResult run = RunChannelScenario({"exit_child_return"});
  ExpectAllExitedZero(run, 2);
  EXPECT_THAT(run.trace.Root().out, HasSubstr("RESULT parent received 3001 values then kUnavailable\n"));
}

TEST(SendThenExit, ChildCallsExit) {
  RunResult run = RunChannelScenario({"exit_child_exit"});
  ExpectAllExitedZero(run, 2);
  EXPECT_THAT(run.trace.Root().out, HasSubstr("RESULT parent received 3001 values then kUnavailable\n"));
}

TEST(SendThenExit, RootReturnsFromMain) {
  RunResult run = RunChannelScenario({"exit_root_return"});
  ExpectAllExitedZero(run, 2);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 2u);
  EXPECT_THAT(tree[1]->out, HasSubstr("RESULT child received 3001 values then kUnavailable\n"));
}

TEST(SendThenExit, RootCallsExit) {
  RunResult run = RunChannelScenario({"exit_root_exit"});
  ExpectAllExitedZero(run, 2);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 2u);
  EXPECT_THAT(tree[1]->out, HasSubstr("RESULT child received 3001 values then kUnavailable\n"));
}

}  // namespace
}  // namespace constellation::testing
