// Channel basics across real processes: send/recv both ways, ping-pong, a
// stream of optional<T> ended by nullopt, dropping and re-creating channels
// with swapped types (and the type-mismatch error), try_/deadline variants, and
// select over several children with a timeout.
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

TEST(ChannelBasics, SendRecvParentChild) {
  RunResult run = RunChannelScenario({"send_recv"});
  ExpectAllExitedZero(run, 2);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 2u) << run.Dump();
  EXPECT_THAT(tree[0]->out, HasSubstr("RESULT parent got 3 echoes\n"));
  EXPECT_THAT(tree[1]->out, HasSubstr("RESULT child echoed 3\n"));
}

TEST(ChannelBasics, PingPong1000RoundTrips) {
  RunResult run = RunChannelScenario({"ping_pong"});
  ExpectAllExitedZero(run, 2);
  ExpectResult(run, "ping_pong 1000 round trips");
  ExpectResult(run, "child answered 1000");
}

TEST(ChannelBasics, OptionalStreamEndedByNullopt) {
  RunResult run = RunChannelScenario({"optional_stream"});
  ExpectAllExitedZero(run, 2);
  ExpectResult(run, "optional stream of 500 strings and 4 ints ended by nullopt");
}

TEST(ChannelBasics, DropAndRecreateWithSwappedTypes) {
  RunResult run = RunChannelScenario({"swap_types"});
  ExpectAllExitedZero(run, 2);
  ExpectResult(run, "child swapped types");
  ExpectResult(run, "parent swapped types");
  // The mismatch error names both types (the scenario checks the exact names too).
  std::string mismatch = ExpectResult(run, "mismatch ");
  EXPECT_THAT(mismatch, HasSubstr("Receiver<int>"));
  EXPECT_THAT(mismatch, HasSubstr("Sender<std::"));
  EXPECT_THAT(mismatch, HasSubstr("string"));
}

TEST(ChannelBasics, TryRecvTrySendAndDeadlines) {
  RunResult run = RunChannelScenario({"try_recv"});
  ExpectAllExitedZero(run, 2);
  ExpectResult(run, "try_recv and deadlines ok");
}

TEST(ChannelBasics, SelectOverChildrenWithTimeout) {
  RunResult run = RunChannelScenario({"select"});
  ExpectAllExitedZero(run, 4);
  ExpectResult(run, "select timeout after ");
  ExpectResult(run, "select collected 15 values and 3 exits");
}

}  // namespace
}  // namespace constellation::testing
