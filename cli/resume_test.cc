#include "cli/resume.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace constellation::cli {
namespace {

using ::testing::HasSubstr;

const absl::Time kStart = absl::FromUnixSeconds(1000);
const absl::Status kAway = absl::UnavailableError("Socket closed");

v1::JobEvent Event(uint64_t seq) {
  v1::JobEvent e;
  e.set_seq(seq);
  return e;
}

TEST(Retry, WaitsGrowAndStopAtTheBudget) {
  Retry retry(absl::Seconds(10));
  absl::Time now = kStart;
  std::vector<absl::Duration> waits;
  while (true) {
    absl::StatusOr<absl::Duration> wait = retry.Failed(now, kAway);
    if (!wait.ok()) {
      EXPECT_TRUE(absl::IsUnavailable(wait.status()));
      EXPECT_THAT(wait.status().message(), HasSubstr("Socket closed"));
      EXPECT_THAT(wait.status().message(), HasSubstr("no answer for 10s"));
      break;
    }
    waits.push_back(*wait);
    now += *wait;
  }
  ASSERT_GE(waits.size(), 5u);
  EXPECT_EQ(waits[0], absl::Milliseconds(100));
  EXPECT_EQ(waits[1], absl::Milliseconds(200));
  EXPECT_EQ(waits[4], absl::Milliseconds(1600));
  EXPECT_EQ(waits[5], absl::Seconds(2));
  // The last wait ends exactly at the budget, never past it.
  EXPECT_EQ(waits.back(), absl::Milliseconds(900));
  EXPECT_EQ(now, kStart + absl::Seconds(10));
}

TEST(Retry, ProgressStartsAFreshBudget) {
  Retry retry(absl::Seconds(1));
  ASSERT_TRUE(retry.Failed(kStart, kAway).ok());
  ASSERT_TRUE(retry.Failed(kStart + absl::Milliseconds(900), kAway).ok());
  retry.Progress();
  // Long after the first failure: a fresh budget, the shortest wait.
  absl::StatusOr<absl::Duration> wait = retry.Failed(kStart + absl::Hours(1), kAway);
  ASSERT_TRUE(wait.ok()) << wait.status();
  EXPECT_EQ(*wait, absl::Milliseconds(100));
  EXPECT_FALSE(retry.Failed(kStart + absl::Hours(1) + absl::Seconds(1), kAway).ok());
}

TEST(Retry, AnswersThatWillNotChangeAreNotRetried) {
  Retry retry(absl::Seconds(60));
  absl::Status missing = absl::NotFoundError("no job 7");
  absl::StatusOr<absl::Duration> wait = retry.Failed(kStart, missing);
  EXPECT_EQ(wait.status(), missing);
  EXPECT_FALSE(retry.Failed(kStart, absl::PermissionDeniedError("not yours")).ok());
  EXPECT_FALSE(retry.Failed(kStart, absl::InvalidArgumentError("bad")).ok());
}

TEST(Retry, BrokenStreamsRetryMoreCodes) {
  Retry retry(absl::Seconds(60));
  EXPECT_FALSE(retry.Failed(kStart, absl::InternalError("RST_STREAM")).ok());
  EXPECT_TRUE(retry.Failed(kStart, absl::InternalError("RST_STREAM"), /*streaming=*/true).ok());
  EXPECT_TRUE(retry.Failed(kStart, absl::UnknownError("Stream removed"), /*streaming=*/true).ok());
  EXPECT_FALSE(IsRetryable(absl::CancelledError(""), true));
  EXPECT_FALSE(IsRetryable(absl::NotFoundError(""), true));
}

TEST(WatchCursor, NewEventsAdvanceRepeatsAreDropped) {
  WatchCursor cursor(0);
  EXPECT_EQ(cursor.from_seq(), 0u);
  EXPECT_TRUE(cursor.Accept(Event(1)));
  EXPECT_TRUE(cursor.Accept(Event(2)));
  EXPECT_EQ(cursor.from_seq(), 2u);
  // A reconnect asks from 2; a server that sends 2 again is not believed.
  EXPECT_FALSE(cursor.Accept(Event(2)));
  EXPECT_FALSE(cursor.Accept(Event(1)));
  EXPECT_TRUE(cursor.Accept(Event(3)));
  EXPECT_EQ(cursor.from_seq(), 3u);
  EXPECT_EQ(cursor.gaps(), 0u);
}

TEST(WatchCursor, StartsWhereAsked) {
  WatchCursor cursor(40);
  EXPECT_EQ(cursor.from_seq(), 40u);
  EXPECT_FALSE(cursor.Accept(Event(40)));
  EXPECT_TRUE(cursor.Accept(Event(41)));
}

TEST(WatchCursor, CountsGaps) {
  WatchCursor cursor(0);
  EXPECT_TRUE(cursor.Accept(Event(1)));
  EXPECT_TRUE(cursor.Accept(Event(5)));
  EXPECT_EQ(cursor.gaps(), 1u);
  EXPECT_EQ(cursor.from_seq(), 5u);
}

}  // namespace
}  // namespace constellation::cli
