// MasterGrace (issue 12, item 3): a node without a master keeps its
// processes for the grace, a master that comes back in time cancels the kill,
// and the real alarm fires and cancels. Time is a fake alarm fired by hand.
#include "daemon/node_grace.h"

#include <atomic>
#include <future>
#include <string>

#include "daemon/testing/fake_alarm.h"
#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

class MasterGraceTest : public ::testing::Test {
 protected:
  void Make(absl::Duration grace) {
    auto alarm = std::make_unique<FakeAlarm>();
    alarm_ = alarm.get();
    grace_ = std::make_unique<MasterGrace>(grace, std::move(alarm), [this] { ++kills_; });
  }
  FakeAlarm* alarm_ = nullptr;
  int kills_ = 0;
  std::unique_ptr<MasterGrace> grace_;
};

TEST_F(MasterGraceTest, PastTheGraceWithoutAMasterItKills) {
  Make(absl::Seconds(60));
  grace_->Attached();
  EXPECT_FALSE(alarm_->pending());
  grace_->Detached();
  ASSERT_TRUE(alarm_->pending());
  EXPECT_EQ(alarm_->after(), absl::Seconds(60));
  EXPECT_EQ(kills_, 0) << "not before the grace";
  ASSERT_TRUE(alarm_->Fire());
  EXPECT_EQ(kills_, 1);
  EXPECT_TRUE(grace_->expired());
}

TEST_F(MasterGraceTest, AMasterBackWithinTheGraceCancelsTheKill) {
  Make(absl::Seconds(60));
  grace_->Attached();
  grace_->Detached();
  grace_->Attached();
  EXPECT_FALSE(alarm_->pending());
  EXPECT_EQ(kills_, 0);
  EXPECT_FALSE(grace_->expired());
  // Away again: a fresh grace.
  grace_->Detached();
  ASSERT_TRUE(alarm_->pending());
  ASSERT_TRUE(alarm_->Fire());
  EXPECT_EQ(kills_, 1);
}

// The alarm's thread already took the callback when the master came back.
TEST_F(MasterGraceTest, AnExpiryRacingAnAttachDoesNothing) {
  Make(absl::Seconds(60));
  grace_->Attached();
  grace_->Detached();
  std::function<void()> late = alarm_->Take();
  grace_->Attached();
  late();
  EXPECT_EQ(kills_, 0);
  // Also when the master has gone again since: that is a new grace.
  grace_->Detached();
  late();
  EXPECT_EQ(kills_, 0);
  ASSERT_TRUE(alarm_->Fire());
  EXPECT_EQ(kills_, 1);
}

TEST_F(MasterGraceTest, AZeroGraceKillsAtOnce) {
  Make(absl::ZeroDuration());
  grace_->Attached();
  grace_->Detached();
  EXPECT_EQ(kills_, 1);
  EXPECT_FALSE(alarm_->pending());
}

TEST_F(MasterGraceTest, OnlyAnAttachedMasterCanBeLost) {
  Make(absl::Seconds(5));
  grace_->Detached();  // never attached: nothing to wait for
  EXPECT_FALSE(alarm_->pending());
  grace_->Attached();
  grace_->Detached();
  grace_->Detached();  // the same loss seen twice: one grace
  EXPECT_EQ(alarm_->sets(), 1);
}

// A node that drains and leaves says so; only a master lost unasked is a warning.
TEST_F(MasterGraceTest, ANodeThatLeavesDoesNotWarnThatTheMasterIsGone) {
  Make(absl::Seconds(60));
  grace_->Attached();
  ::testing::internal::CaptureStderr();
  grace_->Detached(/*leaving=*/true);
  std::string leaving = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(leaving.find("INFO node: left the master (draining)"), std::string::npos) << leaving;
  EXPECT_EQ(leaving.find("the master is gone"), std::string::npos) << leaving;
  grace_->Attached();
  ::testing::internal::CaptureStderr();
  grace_->Detached();
  std::string lost = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(lost.find("WARNING node: the master is gone; keeping its processes for 1m"), std::string::npos) << lost;
}

TEST(ThreadAlarm, FiresWhenItsTimeHasCome) {
  ThreadAlarm alarm;
  std::promise<void> fired;
  alarm.Set(absl::ZeroDuration(), [&] { fired.set_value(); });
  EXPECT_EQ(fired.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
}

TEST(ThreadAlarm, ASecondSetReplacesTheFirst) {
  ThreadAlarm alarm;
  std::atomic<int> first{0};
  std::promise<void> second;
  alarm.Set(absl::Hours(1), [&] { ++first; });
  alarm.Set(absl::ZeroDuration(), [&] { second.set_value(); });
  EXPECT_EQ(second.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(first, 0);
}

TEST(ThreadAlarm, CancelledOrDestroyedItNeverFires) {
  std::atomic<int> fired{0};
  {
    ThreadAlarm alarm;
    alarm.Set(absl::Hours(1), [&] { ++fired; });
    alarm.Cancel();
    alarm.Set(absl::Hours(1), [&] { ++fired; });
  }  // joined here, without waiting for the hour
  EXPECT_EQ(fired, 0);
}

}  // namespace
}  // namespace constellation::daemon
