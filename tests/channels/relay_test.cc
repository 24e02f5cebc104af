// A 3-deep relay, root -> A -> B -> C, where every process exits right after
// its last send: every value arrives, then recv reports kUnavailable.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

TEST(Relay, ThreeDeepDownEachExitsRightAfterSending) {
  RunResult run = RunChannelScenario({"relay_down"});
  ExpectAllExitedZero(run, 4);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 4u);
  for (size_t depth = 0; depth < 3; ++depth) EXPECT_EQ(tree[depth]->children.size(), 1u) << run.Dump();
  EXPECT_THAT(tree[1]->out, HasSubstr("RESULT relay depth 1 forwarded 1000\n"));
  EXPECT_THAT(tree[2]->out, HasSubstr("RESULT relay depth 2 forwarded 1000\n"));
  EXPECT_THAT(tree[3]->out, HasSubstr("RESULT relay C received 1000 then kUnavailable\n"));
}

TEST(Relay, ThreeDeepRoundTripEachExitsRightAfterSending) {
  RunResult run = RunChannelScenario({"relay_round"});
  ExpectAllExitedZero(run, 4);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 4u);
  EXPECT_THAT(tree[0]->out, HasSubstr("RESULT relay round trip of 1000 ok\n"));
  EXPECT_THAT(tree[1]->out, HasSubstr("RESULT relay depth 1 forwarded both ways\n"));
  EXPECT_THAT(tree[2]->out, HasSubstr("RESULT relay depth 2 forwarded both ways\n"));
  EXPECT_THAT(tree[3]->out, HasSubstr("RESULT relay C answered\n"));
}

}  // namespace
}  // namespace constellation::testing
