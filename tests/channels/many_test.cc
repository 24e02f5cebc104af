// Many processes: ten children exchanging with the parent and with each other
// (pairs that dial each other at the same moment), all-to-all among 8, and
// streams both ways at once from several threads.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

TEST(ManyProcesses, TenChildrenExchangeWithParentAndEachOther) {
  RunResult run = RunChannelScenario({"ten_children"});
  ExpectAllExitedZero(run, 11);
  EXPECT_EQ(run.trace.Root().children.size(), 10u);
  EXPECT_THAT(run.trace.Root().out, HasSubstr("RESULT parent checked 10 answers\n"));
  for (int i = 0; i < 10; ++i) ExpectResult(run, absl::StrCat("child ", i, " done"));
}

TEST(ManyProcesses, AllToAllAmongEight) {
  RunResult run = RunChannelScenario({"all_to_all", "8"});
  ExpectAllExitedZero(run, 9);
  EXPECT_THAT(run.trace.Root().out, HasSubstr("RESULT all-to-all among 8 ok\n"));
  for (int i = 0; i < 8; ++i) ExpectResult(run, absl::StrCat("member ", i, " received 350"));
}

TEST(ManyProcesses, DuplexStreamsFromSeveralThreads) {
  RunResult run = RunChannelScenario({"duplex"});
  ExpectAllExitedZero(run, 3);
  ExpectResult(run, "duplex parent exchanged 5000 values each way with 2 children");
  ExpectResult(run, "duplex child 0 ok");
  ExpectResult(run, "duplex child 1 ok");
}

}  // namespace
}  // namespace constellation::testing
