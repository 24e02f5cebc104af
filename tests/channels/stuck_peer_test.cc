// The exit flush has a bound and tells the truth: a process that exits with
// values queued toward a peer that is alive but never reads waits at most
// exit_flush_timeout (10 s), then says on stderr which peer did not get how
// many bytes, and is reported as failed with exit code 74 although its
// function returned (docs/channels.md); the peer then gets what arrived, in
// order, followed by kUnavailable naming the sender's exit. Takes ~10 s by design.
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

TEST(ExitFlush, StuckPeerDelaysExitAtMostTheBoundThenReportsTheLoss) {
  RunResult run = RunChannelScenario({"stuck_peer"}, absl::Seconds(90));
  ASSERT_FALSE(run.exit.timed_out);
  ASSERT_EQ(run.trace.processes.size(), 3u) << run.Dump();
  std::vector<const ProcessRecord*> stuck = run.trace.WithStdoutContaining("RESULT stuck sender queued ");
  ASSERT_EQ(stuck.size(), 1u);
  const std::string root = run.trace.order.front();
  // "constellation: exit: N bytes of channel data to process <root> were not delivered: not delivered within 10s ..."
  EXPECT_THAT(stuck[0]->err, HasSubstr("bytes of channel data to process " + root + " were not delivered"));
  EXPECT_THAT(stuck[0]->err, HasSubstr("not delivered within 10s"));
  EXPECT_EQ(stuck[0]->code, 74) << stuck[0]->ExitString();
  EXPECT_THAT(stuck[0]->error, HasSubstr("bytes of channel data undelivered to 1 process"));
  for (const std::string& pid : run.trace.order) {
    const ProcessRecord& p = run.trace.processes.at(pid);
    if (&p == stuck[0]) continue;
    EXPECT_TRUE(p.ExitedZero()) << pid << ": " << p.ExitString() << "\n" << run.Dump();
  }
  EXPECT_EQ(run.exit.code, 74) << "the program's exit code is its first failure's";
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
