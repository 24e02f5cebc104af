// SendBursts' rule, on an injected clock: a ping-pong is written at once, a
// stream's sends inside a window go to the loop, and a burst after a receive
// that followed a burst of several goes to the loop whole.
#include "lib/net/send_bursts.h"

#include <gtest/gtest.h>

namespace constellation::net {
namespace {

using Write = SendBursts::Write;
constexpr int64_t kWindow = SendBursts::kWindowNs;

TEST(SendBurstsTest, APingPongIsWrittenAtOnce) {
  SendBursts bursts;
  int64_t now = 1'000'000;
  for (uint64_t received = 0; received < 100; ++received) {
    EXPECT_EQ(bursts.Decide(now, received), Write::kNow) << "send " << received;
    now += 20'000;  // the reply comes inside the window: the receive, not the time, ends the burst
  }
}

TEST(SendBurstsTest, SendsInsideTheWindowGoToTheLoop) {
  SendBursts bursts;
  EXPECT_EQ(bursts.Decide(1'000'000, 0), Write::kNow);
  EXPECT_EQ(bursts.Decide(1'000'000 + 10, 0), Write::kByTheLoop);
  EXPECT_EQ(bursts.Decide(1'000'000 + kWindow - 1, 0), Write::kByTheLoop);
  // The window ran out with nothing received: a stream goes on from the sender.
  EXPECT_EQ(bursts.Decide(1'000'000 + kWindow, 0), Write::kNow);
}

TEST(SendBurstsTest, ABurstAfterAReceiveThatFollowedSeveralSendsGoesToTheLoopWhole) {
  SendBursts bursts;
  int64_t now = 1'000'000;
  uint64_t received = 0;
  EXPECT_EQ(bursts.Decide(now, received), Write::kNow);  // no history yet
  bursts.Joined();                                       // two more while the loop's write was coming
  bursts.Joined();
  for (int round = 0; round < 10; ++round) {
    received += 3;  // the other side's round
    now += 10 * kWindow;
    EXPECT_EQ(bursts.Decide(now, received), Write::kByTheLoop) << "round " << round;
    EXPECT_EQ(bursts.Decide(now + 100, received), Write::kByTheLoop) << "round " << round;
  }
}

TEST(SendBurstsTest, AWrongGuessIsMadeOnce) {
  SendBursts bursts;
  int64_t now = 1'000'000;
  ASSERT_EQ(bursts.Decide(now, 0), Write::kNow);
  ASSERT_EQ(bursts.Decide(now + 1, 0), Write::kByTheLoop);  // a burst of two
  now += 10 * kWindow;
  EXPECT_EQ(bursts.Decide(now, 1), Write::kByTheLoop);  // guessed a burst: it was a single send
  now += 10 * kWindow;
  EXPECT_EQ(bursts.Decide(now, 2), Write::kNow);  // a ping-pong again
  now += 10 * kWindow;
  EXPECT_EQ(bursts.Decide(now, 3), Write::kNow);
}

TEST(SendBurstsTest, AfterAPauseWithNothingReceivedTheFirstSendIsWrittenAtOnce) {
  SendBursts bursts;
  ASSERT_EQ(bursts.Decide(1'000'000, 0), Write::kNow);
  bursts.Joined();
  bursts.Joined();
  EXPECT_EQ(bursts.Decide(1'000'000 + 100 * kWindow, 0), Write::kNow);
}

TEST(SendBurstsTest, SendsRightAfterAnInPlaceWriteAreBatchedBehindIt) {
  SendBursts bursts;
  bursts.Start(5'000'000, 7);
  EXPECT_EQ(bursts.Decide(5'000'000 + 10, 7), Write::kByTheLoop);
  EXPECT_EQ(bursts.Decide(5'000'000 + 20, 8), Write::kNow);  // a reply came in between
}

}  // namespace
}  // namespace constellation::net
