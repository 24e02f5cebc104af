// Messages are never lost when the sender exits right after send() returned:
// return from the spawned function, exit(0), return from main / exit(0) in the
// root (relay_test.cc has the 3-deep relay). Afterwards recv reports
// kUnavailable instead of hanging.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/harness.h"

namespace constellation::channel_testing {
namespace {

using ::testing::HasSubstr;

TEST(SendThenExit, ChildReturnsFromFunction) {
  RunResult run = RunScenario({"exit_child_return"});
  ExpectAllExitedZero(run, 2);
  EXPECT_THAT(run.Root().out, HasSubstr("RESULT parent received 3001 values then kUnavailable\n"));
}

TEST(SendThenExit, ChildCallsExit) {
  RunResult run = RunScenario({"exit_child_exit"});
  ExpectAllExitedZero(run, 2);
  EXPECT_THAT(run.Root().out, HasSubstr("RESULT parent received 3001 values then kUnavailable\n"));
}

TEST(SendThenExit, RootReturnsFromMain) {
  RunResult run = RunScenario({"exit_root_return"});
  ExpectAllExitedZero(run, 2);
  std::vector<const Process*> tree = Tree(run);
  ASSERT_EQ(tree.size(), 2u);
  EXPECT_THAT(tree[1]->out, HasSubstr("RESULT child received 3001 values then kUnavailable\n"));
}

TEST(SendThenExit, RootCallsExit) {
  RunResult run = RunScenario({"exit_root_exit"});
  ExpectAllExitedZero(run, 2);
  std::vector<const Process*> tree = Tree(run);
  ASSERT_EQ(tree.size(), 2u);
  EXPECT_THAT(tree[1]->out, HasSubstr("RESULT child received 3001 values then kUnavailable\n"));
}

}  // namespace
}  // namespace constellation::channel_testing
