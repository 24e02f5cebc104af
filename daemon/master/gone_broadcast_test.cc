// GoneBroadcast with fake nodes and a fake clock: batching per node and
// deployment, a slow node, retries, a node that goes down, the bounds.
#include "daemon/master/gone_broadcast.h"

#include <thread>

#include "daemon/master/fake_node_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::ToProto;
namespace {

using ::testing::ElementsAre;

pb::ProcessGone Exited(uint16_t port) {
  pb::ProcessGone gone;
  *gone.mutable_pid() = ToProto(Pid::FromIpv4(0x0a000009, port, 1));
  gone.mutable_exit()->set_code(0);
  return gone;
}

class GoneBroadcastTest : public ::testing::Test {
 protected:
  GoneBroadcastTest()
      : broadcast_(
            [this](const std::string& addr) -> NodeClient* {
              if (addr == "n1:1") return &n1_;
              if (addr == "n2:1") return &n2_;
              return nullptr;
            },
            &timers_, absl::Seconds(1)) {}
  ~GoneBroadcastTest() override {
    n1_.hold_gone = false;
    n2_.hold_gone = false;
    n1_.ReleaseGone(absl::CancelledError("end of test"));
    n2_.ReleaseGone(absl::CancelledError("end of test"));
    broadcast_.Shutdown();
  }
  FakeNodeClient n1_{"n1:1"};
  FakeNodeClient n2_{"n2:1"};
  FakeTimers timers_;
  GoneBroadcast broadcast_;
};

TEST_F(GoneBroadcastTest, QueuedVerdictsGoOutAtFlushInOneCallPerNodeAndDeployment) {
  broadcast_.Queue("n1:1", 7, Exited(1));
  broadcast_.Queue("n1:1", 7, Exited(2));
  broadcast_.Queue("n1:1", 8, Exited(3));
  broadcast_.Queue("n2:1", 7, Exited(1));
  EXPECT_TRUE(n1_.gone_batches().empty()) << "nothing before Flush";
  broadcast_.Flush();
  std::vector<pb::GoneBatch> batches = n1_.gone_batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].deployment(), 7u);
  EXPECT_EQ(batches[0].gone_size(), 2);
  EXPECT_EQ(batches[1].deployment(), 8u);
  EXPECT_THAT(n2_.gone_pids(), ElementsAre("10.0.0.9:1 exit"));
  EXPECT_EQ(broadcast_.queued(), 0u);
  EXPECT_EQ(broadcast_.in_flight(), 0u);
}

TEST_F(GoneBroadcastTest, ASlowNodeDelaysOnlyItselfAndGetsWhatQueuedMeanwhileInItsNextCall) {
  n1_.hold_gone = true;
  broadcast_.Queue("n1:1", 7, Exited(1));
  broadcast_.Queue("n2:1", 7, Exited(1));
  broadcast_.Flush();
  EXPECT_EQ(n2_.gone_batches().size(), 1u) << "n2 is not held up by n1";
  EXPECT_EQ(broadcast_.in_flight(), 1u);
  broadcast_.Queue("n1:1", 7, Exited(2));
  broadcast_.Queue("n1:1", 7, Exited(3));
  broadcast_.Flush();
  EXPECT_EQ(n1_.gone_batches().size(), 1u) << "one call in flight per node and deployment";
  n1_.hold_gone = false;
  EXPECT_EQ(n1_.ReleaseGone(), 1u);
  EXPECT_THAT(n1_.gone_pids(), ElementsAre("10.0.0.9:1 exit", "10.0.0.9:2 exit", "10.0.0.9:3 exit"));
  EXPECT_EQ(n1_.gone_batches().size(), 2u) << "the two queued meanwhile went in one call";
}

TEST_F(GoneBroadcastTest, AFailedCallIsTriedAgainAfterThePause) {
  n1_.gone_error = absl::UnavailableError("busy");
  broadcast_.Queue("n1:1", 7, Exited(1));
  broadcast_.Flush();
  ASSERT_EQ(n1_.gone_batches().size(), 1u);
  n1_.gone_error = absl::OkStatus();
  broadcast_.Queue("n1:1", 7, Exited(2));
  broadcast_.Flush();
  EXPECT_EQ(n1_.gone_batches().size(), 1u) << "it waits for its pause";
  timers_.Advance(absl::Milliseconds(999));
  EXPECT_EQ(n1_.gone_batches().size(), 1u);
  timers_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(n1_.gone_pids(), ElementsAre("10.0.0.9:1 exit", "10.0.0.9:1 exit", "10.0.0.9:2 exit"));
  EXPECT_EQ(broadcast_.queued(), 0u);
}

TEST_F(GoneBroadcastTest, ANodeThatGoesDownLosesItsQueueAndIsNotRetried) {
  n1_.hold_gone = true;
  broadcast_.Queue("n1:1", 7, Exited(1));
  broadcast_.Flush();
  broadcast_.Queue("n1:1", 7, Exited(2));
  broadcast_.NodeDown("n1:1");
  EXPECT_EQ(broadcast_.queued(), 0u);
  n1_.hold_gone = false;
  n1_.ReleaseGone(absl::UnavailableError("connection reset"));
  timers_.Advance(absl::Seconds(5));
  EXPECT_EQ(n1_.gone_batches().size(), 1u) << "it asks again (Master.Watch) when it attaches";
  broadcast_.Queue("n1:1", 7, Exited(3));  // it is back
  broadcast_.Flush();
  EXPECT_THAT(n1_.gone_pids(), ElementsAre("10.0.0.9:1 exit", "10.0.0.9:3 exit"));
}

TEST_F(GoneBroadcastTest, AnEndedDeploymentIsForgotten) {
  n1_.hold_gone = true;
  broadcast_.Queue("n1:1", 7, Exited(1));
  broadcast_.Flush();
  broadcast_.Queue("n1:1", 7, Exited(2));
  broadcast_.Queue("n2:1", 7, Exited(2));
  broadcast_.Forget(7);
  broadcast_.Flush();
  EXPECT_EQ(broadcast_.queued(), 0u);
  EXPECT_TRUE(n2_.gone_batches().empty());
  n1_.hold_gone = false;
  n1_.ReleaseGone(absl::UnavailableError("busy"));
  timers_.Advance(absl::Seconds(5));
  EXPECT_EQ(n1_.gone_batches().size(), 1u) << "not retried";
}

TEST_F(GoneBroadcastTest, ACallCarriesAtMostTheBoundAndTheRestFollows) {
  for (int i = 0; i < GoneBroadcast::kMaxBatch + 10; ++i) broadcast_.Queue("n1:1", 7, Exited(i));
  broadcast_.Flush();
  std::vector<pb::GoneBatch> batches = n1_.gone_batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].gone_size(), GoneBroadcast::kMaxBatch);
  EXPECT_EQ(batches[1].gone_size(), 10);
}

TEST_F(GoneBroadcastTest, ShutdownWaitsForTheCallInFlightAndSendsNothingAfter) {
  n1_.hold_gone = true;
  broadcast_.Queue("n1:1", 7, Exited(1));
  broadcast_.Flush();
  broadcast_.Queue("n1:1", 7, Exited(2));
  std::thread releaser([&] {
    n1_.hold_gone = false;
    n1_.ReleaseGone();  // verdict 2 may go out now, or be dropped by Shutdown
  });
  broadcast_.Shutdown();  // returns once the call in flight is done
  releaser.join();
  EXPECT_EQ(broadcast_.in_flight(), 0u);
  size_t calls = n1_.gone_batches().size();
  broadcast_.Queue("n1:1", 7, Exited(3));
  broadcast_.Flush();
  EXPECT_EQ(n1_.gone_batches().size(), calls) << "nothing after Shutdown";
}

}  // namespace
}  // namespace constellation::daemon::master
