// Busy-polling (busy_poll.h): the setting, and that channels and select keep
// their results while receivers spin (a spin longer than any wait here, so
// every wait below starts by spinning). What it buys is measured by
// //bench:compare (the ours-busy-poll row), never here.
#include "lib/net/busy_poll.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "lib/net/channel.h"
#include "lib/net/select.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::DataPlane;
using net::testing::MakePlane;

// Sets the spin for one test and turns it off after.
class BusyPollTest : public ::testing::Test {
 protected:
  void SetUp() override { set_busy_poll(absl::Seconds(1)); }
  void TearDown() override { set_busy_poll(absl::ZeroDuration()); }

  std::unique_ptr<DataPlane> a_ = MakePlane(0xa);
  std::unique_ptr<DataPlane> b_ = MakePlane(0xb);
};

TEST(BusyPollSettingTest, SetAndClamp) {
  set_busy_poll(absl::Microseconds(50));
  EXPECT_EQ(busy_poll(), absl::Microseconds(50));
  set_busy_poll(absl::Microseconds(-5));
  EXPECT_EQ(busy_poll(), absl::ZeroDuration());
  set_busy_poll(absl::Hours(1));
  EXPECT_EQ(busy_poll(), absl::Seconds(1));
  set_busy_poll(absl::ZeroDuration());
  EXPECT_EQ(busy_poll(), absl::ZeroDuration());
}

TEST_F(BusyPollTest, PingPongWhileSpinning) {
  constexpr int kRounds = 500;
  std::thread echo([&] {
    Receiver<int> rx(a_->self(), *b_);
    Sender<int> tx(a_->self(), *b_);
    for (int i = 0; i < kRounds; ++i) ASSERT_TRUE(tx.send(*rx.recv() + 1).ok());
  });
  Sender<int> tx(b_->self(), *a_);
  Receiver<int> rx(b_->self(), *a_);
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(tx.send(i).ok());
    absl::StatusOr<int> v = rx.recv();
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(*v, i + 1);
  }
  echo.join();
  EXPECT_GT(net::ChannelAccess::PeerOf(rx).fast_path_frames(), 0u);
}

TEST_F(BusyPollTest, StreamInOrderWhileSpinning) {
  constexpr int kCount = 20000;  // more than the queue holds: back-pressure while the receiver spins
  std::thread sender([&] {
    Sender<std::string> tx(b_->self(), *a_);
    for (int i = 0; i < kCount; ++i) ASSERT_TRUE(tx.send(std::to_string(i)).ok());
  });
  Receiver<std::string> rx(a_->self(), *b_);
  for (int i = 0; i < kCount; ++i) {
    absl::StatusOr<std::string> v = rx.recv();
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(*v, std::to_string(i));
  }
  sender.join();
}

TEST_F(BusyPollTest, DeadlinesAndTryRecvStillEndWithNothing) {
  Sender<int> tx(b_->self(), *a_);
  Receiver<int> rx(a_->self(), *b_);
  ASSERT_TRUE(tx.send(1).ok());
  ASSERT_EQ(*rx.recv(), 1);
  // The spin (1 s) is longer than the deadline: the deadline wins.
  EXPECT_TRUE(absl::IsDeadlineExceeded(rx.recv_for(absl::Milliseconds(5)).status()));
  EXPECT_TRUE(absl::IsDeadlineExceeded(rx.try_recv().status()));
  ASSERT_TRUE(tx.send(2).ok());
  absl::StatusOr<int> two = rx.recv_for(absl::Seconds(30));
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, 2);
}

TEST_F(BusyPollTest, SelectWhileSpinning) {
  Sender<int> tx(b_->self(), *a_);
  Receiver<int> rx(a_->self(), *b_);
  std::unique_ptr<DataPlane> c = MakePlane(0xc);
  Receiver<int> idle(c->self(), *b_);
  for (int i = 0; i < 50; ++i) {
    std::thread later([&] { ASSERT_TRUE(tx.send(i).ok()); });
    absl::StatusOr<int> got;
    absl::StatusOr<size_t> which = select(
        {on_recv(rx, [&](absl::StatusOr<int> v) { got = std::move(v); }), on_recv(idle, [](absl::StatusOr<int>) {})});
    later.join();
    ASSERT_TRUE(which.ok()) << which.status();
    ASSERT_EQ(*which, 0u);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, i);
  }
  EXPECT_TRUE(
      absl::IsDeadlineExceeded(select({on_recv(rx, [](absl::StatusOr<int>) {})}, absl::Milliseconds(5)).status()));
}

TEST_F(BusyPollTest, PeerGoneEndsTheSpin) {
  Receiver<int> rx(a_->self(), *b_);
  {
    Sender<int> tx(b_->self(), *a_);
    ASSERT_TRUE(tx.send(7).ok());
  }
  ASSERT_EQ(*rx.recv(), 7);
  std::thread closer([&] { a_.reset(); });
  absl::StatusOr<int> after = rx.recv_for(absl::Seconds(60));
  closer.join();
  EXPECT_TRUE(absl::IsUnavailable(after.status())) << after.status();
}

}  // namespace
}  // namespace constellation
