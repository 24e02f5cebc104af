#include "lib/net/channel.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::DataPlane;
using net::testing::MakePlane;
using net::testing::TestOptions;

using Pair = net::testing::PlanePair;

TEST(ChannelTest, SendRecv) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(tx.send(42).ok());
  absl::StatusOr<int> v = rx.recv();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 42);
  EXPECT_EQ(tx.remote(), p.b->self());
  EXPECT_EQ(rx.remote(), p.a->self());
}

TEST(ChannelTest, PingPong) {
  Pair p;
  std::thread echo([&] {
    Receiver<int> rx(p.a->self(), *p.b);
    Sender<int> tx(p.a->self(), *p.b);
    for (int i = 0; i < 2000; ++i) ASSERT_TRUE(tx.send(*rx.recv() + 1).ok());
  });
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.b->self(), *p.a);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(tx.send(i).ok());
    absl::StatusOr<int> v = rx.recv();
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(*v, i + 1);
  }
  echo.join();
  EXPECT_EQ(p.a->connections_opened(), 1u);
}

TEST(ChannelTest, FifoUnderBackPressure) {
  Pair p;
  constexpr int kCount = 20000;
  std::thread sender([&] {
    Sender<std::pair<int, std::string>> tx(p.b->self(), *p.a);
    for (int i = 0; i < kCount; ++i) ASSERT_TRUE(tx.send({i, std::string(i % 300, 'x')}).ok());
  });
  Receiver<std::pair<int, std::string>> rx(p.a->self(), *p.b);
  for (int i = 0; i < kCount; ++i) {
    auto v = rx.recv();
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(v->first, i);
    ASSERT_EQ(v->second.size(), static_cast<size_t>(i % 300));
  }
  sender.join();
}

TEST(ChannelTest, TypeMismatchNamesBothTypes) {
  Pair p;
  {
    Sender<std::string> tx(p.b->self(), *p.a);
    Receiver<int> rx(p.a->self(), *p.b);
    ASSERT_TRUE(tx.send("hello").ok());
    absl::StatusOr<int> v = rx.recv();
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find("Receiver<int>"), std::string::npos) << v.status();
    EXPECT_NE(v.status().message().find(std::string(type_name<std::string>())), std::string::npos) << v.status();
  }
}

TEST(ChannelTest, DropAndRecreateWithSwappedTypesReusesConnection) {
  Pair p;
  {
    Sender<int> tx(p.b->self(), *p.a);
    Receiver<std::string> rx(p.b->self(), *p.a);
    Receiver<int> brx(p.a->self(), *p.b);
    Sender<std::string> btx(p.a->self(), *p.b);
    ASSERT_TRUE(tx.send(1).ok());
    EXPECT_EQ(*brx.recv(), 1);
    ASSERT_TRUE(btx.send("one").ok());
    EXPECT_EQ(*rx.recv(), "one");
  }
  {
    Sender<std::string> tx(p.b->self(), *p.a);
    Receiver<int> rx(p.b->self(), *p.a);
    Receiver<std::string> brx(p.a->self(), *p.b);
    Sender<int> btx(p.a->self(), *p.b);
    ASSERT_TRUE(tx.send("two").ok());
    EXPECT_EQ(*brx.recv(), "two");
    ASSERT_TRUE(btx.send(2).ok());
    EXPECT_EQ(*rx.recv(), 2);
  }
  EXPECT_EQ(p.a->connections_opened(), 1u);
  EXPECT_EQ(p.b->connections_opened(), 1u);
}

TEST(ChannelTest, OptionalStreamEndedByNullopt) {
  Pair p;
  Sender<std::optional<int>> tx(p.b->self(), *p.a);
  Receiver<std::optional<int>> rx(p.a->self(), *p.b);
  std::thread producer([&] {
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(tx.send(i).ok());
    ASSERT_TRUE(tx.send(std::nullopt).ok());
  });
  int sum = 0, count = 0;
  while (true) {
    auto v = rx.recv();
    ASSERT_TRUE(v.ok()) << v.status();
    if (!v->has_value()) break;
    sum += **v;
    ++count;
  }
  producer.join();
  EXPECT_EQ(count, 500);
  EXPECT_EQ(sum, 500 * 499 / 2);
}

TEST(ChannelTest, HundredMebibyteValueWhileOtherChannelFlows) {
  Pair p;
  std::string big(100 << 20, '\0');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  Sender<std::string> tx(p.b->self(), *p.a);
  Receiver<std::string> rx(p.a->self(), *p.b);
  // The other direction keeps flowing while the big value is in flight.
  Sender<int> back_tx(p.a->self(), *p.b);
  Receiver<int> back_rx(p.b->self(), *p.a);
  std::thread sender([&] { ASSERT_TRUE(tx.send(big).ok()); });
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(back_tx.send(i).ok());
    ASSERT_EQ(*back_rx.recv(), i);
  }
  absl::StatusOr<std::string> got = rx.recv();
  sender.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == big);
}

TEST(ChannelTest, SendBlocksAtTheBoundAndResumes) {
  Pair p;
  Sender<std::string> tx(p.b->self(), *p.a);
  Receiver<std::string> rx(p.a->self(), *p.b);
  ASSERT_TRUE(tx.send("up").ok());
  ASSERT_EQ(*rx.recv(), "up");
  const std::string chunk(1000, 'z');
  // The receiver stops reading: the sender's queue, both kernels' buffers and the
  // receiver's queue fill up, then send blocks (here: until its deadline).
  int sent = 0;
  while (true) {
    absl::Status s = tx.send_for(chunk, absl::Milliseconds(100));
    if (absl::IsDeadlineExceeded(s)) break;
    ASSERT_TRUE(s.ok()) << s;
    ++sent;
    ASSERT_LT(sent, 64 << 10) << "send never blocked: memory is not bounded";
  }
  EXPECT_TRUE(absl::IsDeadlineExceeded(tx.try_send(chunk)) || sent > 0);
  // Reading everything unblocks the sender.
  for (int i = 0; i < sent; ++i) ASSERT_TRUE(rx.recv().ok());
  EXPECT_TRUE(tx.send_for(chunk, absl::Seconds(30)).ok());
  EXPECT_TRUE(rx.recv().ok());
}

TEST(ChannelTest, TryAndDeadlineVariants) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  EXPECT_TRUE(absl::IsDeadlineExceeded(rx.try_recv().status()));
  absl::Time start = absl::Now();
  EXPECT_TRUE(absl::IsDeadlineExceeded(rx.recv_for(absl::Milliseconds(30)).status()));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  ASSERT_TRUE(tx.try_send(5).ok());
  absl::StatusOr<int> v = rx.recv_until(absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 5);
}

TEST(ChannelTest, ValuesSentBeforeTheReceiverExistsAreKept) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(tx.send(i).ok());
  Receiver<int> rx(p.a->self(), *p.b);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(*rx.recv(), i);
}

TEST(ChannelTest, SimultaneousFirstUseEndsWithOneConnection) {
  for (int round = 0; round < 10; ++round) {
    Pair p;
    Sender<int> a_tx(p.b->self(), *p.a);
    Sender<int> b_tx(p.a->self(), *p.b);
    std::thread t([&] { ASSERT_TRUE(b_tx.send(2).ok()); });
    ASSERT_TRUE(a_tx.send(1).ok());
    t.join();
    Receiver<int> a_rx(p.b->self(), *p.a);
    Receiver<int> b_rx(p.a->self(), *p.b);
    EXPECT_EQ(*a_rx.recv(), 2);
    EXPECT_EQ(*b_rx.recv(), 1);
    EXPECT_TRUE(p.a->WaitForOpenConnections(1, absl::Seconds(30)));
    EXPECT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  }
}

TEST(ChannelTest, IdleConnectionIsTornDownAndReopened) {
  DataPlane::Options options = TestOptions();
  options.idle_timeout = absl::Milliseconds(20);
  auto a = net::testing::MakePlane(0xa, options);
  auto b = net::testing::MakePlane(0xb, options);
  for (int round = 0; round < 3; ++round) {
    {
      Sender<int> tx(b->self(), *a);
      Receiver<int> rx(a->self(), *b);
      ASSERT_TRUE(tx.send(round).ok());
      EXPECT_EQ(*rx.recv(), round);
      EXPECT_EQ(a->open_connections(), 1u);
    }
    EXPECT_TRUE(a->WaitForOpenConnections(0, absl::Seconds(30)));
    EXPECT_TRUE(b->WaitForOpenConnections(0, absl::Seconds(30)));
  }
  EXPECT_EQ(a->connections_opened(), 3u);
}

TEST(ChannelTest, ConnectionStaysWhileOneSideHasAChannel) {
  DataPlane::Options options = TestOptions();
  options.idle_timeout = absl::Milliseconds(5);
  auto a = net::testing::MakePlane(0xa, options);
  auto b = net::testing::MakePlane(0xb, options);
  Receiver<int> rx(a->self(), *b);
  {
    Sender<int> tx(b->self(), *a);
    ASSERT_TRUE(tx.send(1).ok());
    EXPECT_EQ(*rx.recv(), 1);
  }
  // a is idle and proposes closing; b still has a Receiver and refuses.
  Sender<int> tx(b->self(), *a);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(tx.send(i).ok());
    EXPECT_EQ(*rx.recv(), i);
  }
}

TEST(ChannelTest, PeerThatIsNotListeningIsAnError) {
  auto a = MakePlane(0xa);
  net::testing::Listener gone = net::testing::Listen(0x99);
  close(gone.fd);
  Receiver<int> rx(gone.pid, *a);
  absl::StatusOr<int> v = rx.recv();
  EXPECT_TRUE(absl::IsUnavailable(v.status())) << v.status();
  Sender<int> tx(gone.pid, *a);
  absl::Status s;
  while ((s = tx.send(1)).ok()) {
  }
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
}

TEST(ChannelTest, WrongNonceIsAnExitedProcess) {
  Pair p;
  Pid stale(p.b->self().addr(), p.b->self().port(), p.b->self().nonce() + 1);
  Receiver<int> rx(stale, *p.a);
  absl::StatusOr<int> v = rx.recv();
  EXPECT_TRUE(absl::IsUnavailable(v.status())) << v.status();
  EXPECT_NE(v.status().message().find("exited"), std::string::npos) << v.status();
}

TEST(ChannelTest, PeerShutDownMidStreamDeliversThenErrors) {
  Pair p;
  Receiver<int> rx(p.b->self(), *p.a);
  {
    Sender<int> tx(p.a->self(), *p.b);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(tx.send(i).ok());
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(*rx.recv(), i);
  p.b.reset();
  EXPECT_TRUE(absl::IsUnavailable(rx.recv().status()));
}

// recv_for takes what is queued without looking at the clock (Peer::RecvFor):
// even a zero timeout gets every value already there, in order, and the
// peer's end only after them; with nothing queued it waits out the timeout.
TEST(ChannelTest, RecvForTakesQueuedValuesThenTheEnd) {
  Pair p;
  Receiver<int> rx(p.b->self(), *p.a);
  {
    Sender<int> tx(p.a->self(), *p.b);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(tx.send(i).ok());
    EXPECT_EQ(*rx.recv(), 0);  // the others arrived with it or follow it
  }
  for (int i = 1; i < 5; ++i) {
    absl::StatusOr<int> v = rx.recv_for(absl::ZeroDuration());
    if (absl::IsDeadlineExceeded(v.status())) v = rx.recv_for(absl::Seconds(30));  // not read yet
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, i);
  }
  const absl::Time start = absl::Now();
  EXPECT_TRUE(absl::IsDeadlineExceeded(rx.recv_for(absl::Milliseconds(20)).status()));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  p.b.reset();
  EXPECT_TRUE(absl::IsUnavailable(rx.recv_for(absl::Seconds(30)).status()));
}

using ChannelDeathTest = ::testing::Test;

TEST(ChannelDeathTest, ChannelToSelfAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto a = MakePlane(0xa);
  EXPECT_DEATH(Sender<int>(a->self(), *a), "itself");
  EXPECT_DEATH(Receiver<int>(a->self(), *a), "itself");
}

TEST(ChannelDeathTest, SecondLiveChannelAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.b->self(), *p.a);
  EXPECT_DEATH(Sender<std::string>(p.b->self(), *p.a), "second live Sender");
  EXPECT_DEATH(Receiver<int>(p.b->self(), *p.a), "second live Receiver");
}

TEST(ChannelDeathTest, ChannelBeforeInitAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Pid somebody = Pid::FromIpv4(0x7f000001, 1, 1);
  EXPECT_DEATH(Sender<int>{somebody}, "call constellation::init\\(\\) first");
}

}  // namespace
}  // namespace constellation
