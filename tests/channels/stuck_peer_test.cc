// The exit flush has a bound: a process that exits with values queued toward
// a peer that is alive but never reads waits at most exit_flush_timeout (10 s),
// says so on stderr, and exits; the peer then gets what arrived, in order,
// followed by kUnavailable. Takes ~10 s by design.
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

TEST(ExitFlush, StuckPeerDelaysExitAtMostTheBound) {
  RunResult run = RunChannelScenario({"stuck_peer"}, absl::Seconds(90));
  ExpectAllExitedZero(run, 3);
  ExpectResult(run, "stuck sender queued ");
  std::vector<const ProcessRecord*> stuck = run.trace.WithStdoutContaining("RESULT stuck sender queued ");
  ASSERT_EQ(stuck.size(), 1u);
  EXPECT_THAT(stuck[0]->err, HasSubstr("constellation: exit: some channel data could not be delivered within 10s"));
  // "stuck peer: the sender exited after N s; ..."
  std::string line = ExpectResult(run, "stuck peer: the sender exited after ");
  std::vector<std::string> words = absl::StrSplit(line, ' ');
  int seconds = -1;
  ASSERT_GE(words.size(), 7u) << line;
  ASSERT_TRUE(absl::SimpleAtoi(words[6], &seconds)) << line;
  EXPECT_GE(seconds, 8) << "gave up before its bound: " << line;
  EXPECT_LE(seconds, 40) << "the bound did not hold: " << line;
}

}  // namespace
}  // namespace constellation::testing
