// Volume and buffering: back-pressure toward a reader that stopped, one full
// direction of a connection not stalling the other, and channels re-created
// with other types after the idle teardown closed the connection
// (big_value_test.cc has the 100 MiB value).
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

TEST(Bulk, BackPressureBoundsTheSenderThenEverythingArrives) {
  RunResult run = RunChannelScenario({"back_pressure"});
  ExpectAllExitedZero(run, 3);
  std::string accepted = ExpectResult(run, "back_pressure accepted ");
  // "back_pressure accepted N values (M MiB) before kDeadlineExceeded; sender RSS grew G MiB"
  std::vector<std::string> words = absl::StrSplit(accepted, ' ');
  ASSERT_GE(words.size(), 13u) << accepted;
  int64_t values = 0, growth = 0;
  ASSERT_TRUE(absl::SimpleAtoi(words[2], &values)) << accepted;
  ASSERT_TRUE(absl::SimpleAtoi(words[11], &growth)) << accepted;
  // docs/channels.md: about 8 MiB of queues plus the two socket buffers.
  EXPECT_GT(values, 0) << accepted;
  EXPECT_LE(values * 64, 96 * 1024) << "more than 96 MiB accepted toward a reader that stopped: " << accepted;
  EXPECT_LE(growth, 96) << accepted;
  ExpectResult(run, "back_pressure delivered ");
  ExpectResult(run, "reader got ");
}

TEST(Bulk, FullDirectionDoesNotStallTheOtherDirection) {
  RunResult run = RunChannelScenario({"no_stall"});
  ExpectAllExitedZero(run, 3);
  ExpectResult(run, "no_stall parent received 500 values with ");
  ExpectResult(run, "no_stall child read ");
}

TEST(Bulk, RecreateWithSwappedTypesAfterIdleTeardown) {
  // Both sides hold no channel for 3 s (> the 2 s idle timeout) between phases.
  RunResult run = RunChannelScenario({"swap_types", "3000"});
  ExpectAllExitedZero(run, 2);
  ExpectResult(run, "child swapped types");
  ExpectResult(run, "parent swapped types");
}

}  // namespace
}  // namespace constellation::testing
