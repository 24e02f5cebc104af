// Coroutine channels on in-process data planes: ordering, errors, timers,
// combinators, cancellation, and many waits on one thread.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lib/async/async.h"
#include "lib/net/channel.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::DataPlane;
using net::testing::MakePlane;

using Pair = net::testing::PlanePair;

Task<int> Add(int x, int y) { co_return x + y; }

Task<int> AddTwice(int x) {
  int once = co_await Add(x, 1);
  co_return co_await Add(once, 1);
}

TEST(AsyncTest, BlockOnRunsNestedTasks) { EXPECT_EQ(block_on(AddTwice(40)), 42); }

Task<void> Nothing() { co_return; }

TEST(AsyncTest, VoidTask) { block_on(Nothing()); }

TEST(AsyncTest, AsyncRecvKeepsOrder) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  constexpr int kCount = 5000;
  std::thread sender([&] {
    for (int i = 0; i < kCount; ++i) ASSERT_TRUE(tx.send(i).ok());
  });
  auto receive = [&]() -> Task<int> {
    int expected = 0;
    for (int i = 0; i < kCount; ++i) {
      absl::StatusOr<int> v = co_await rx.async_recv();
      if (!v.ok() || *v != expected) co_return -1;
      ++expected;
    }
    co_return expected;
  };
  EXPECT_EQ(block_on(receive()), kCount);
  sender.join();
}

TEST(AsyncTest, PingPongWithBlockingEcho) {
  Pair p;
  std::thread echo([&] {
    Receiver<int> rx(p.a->self(), *p.b);
    Sender<int> tx(p.a->self(), *p.b);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tx.send(*rx.recv() + 1).ok());
  });
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.b->self(), *p.a);
  auto ping = [&]() -> Task<absl::Status> {
    for (int i = 0; i < 1000; ++i) {
      absl::Status sent = co_await tx.async_send(i);
      if (!sent.ok()) co_return sent;
      absl::StatusOr<int> v = co_await rx.async_recv();
      if (!v.ok()) co_return v.status();
      if (*v != i + 1) co_return absl::InternalError("wrong reply");
    }
    co_return absl::OkStatus();
  };
  absl::Status status = block_on(ping());
  EXPECT_TRUE(status.ok()) << status;
  echo.join();
}

TEST(AsyncTest, RecvFromAGonePeerFails) {
  Pair p;
  Receiver<int> rx(p.b->self(), *p.a);
  auto receive = [&]() -> Task<absl::Status> {
    absl::StatusOr<int> v = co_await rx.async_recv();
    co_return v.status();
  };
  std::thread killer([&] {
    {
      Sender<int> tx(p.a->self(), *p.b);  // connects, so a is told when b goes
      ASSERT_TRUE(tx.send(1).ok());
    }
    absl::SleepFor(absl::Milliseconds(50));  // (either order works: not a timing test)
    p.b.reset();
  });
  auto both = [&]() -> Task<absl::Status> {
    absl::StatusOr<int> first = co_await rx.async_recv();
    if (!first.ok() || *first != 1) co_return absl::InternalError("no first value");
    co_return co_await receive();
  };
  absl::Status status = block_on(both());
  killer.join();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
}

TEST(AsyncTest, RecvForTimesOut) {
  Pair p;
  Receiver<int> rx(p.b->self(), *p.a);
  auto receive = [&]() -> Task<absl::Status> {
    co_return (co_await rx.async_recv_for(absl::Milliseconds(20))).status();
  };
  EXPECT_TRUE(absl::IsDeadlineExceeded(block_on(receive())));
}

TEST(AsyncTest, TypeMismatchIsReported) {
  Pair p;
  Sender<std::string> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(tx.send("hello").ok());
  auto receive = [&]() -> Task<absl::Status> { co_return (co_await rx.async_recv()).status(); };
  absl::Status status = block_on(receive());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("Sender<"), std::string::npos) << status;
}

Task<int> SleepThen(absl::Duration d, int v) {
  co_await sleep_for(d);
  co_return v;
}

TEST(AsyncTest, WhenAllAndWhenAnyOfTimers) {
  auto all = block_on(when_all(SleepThen(absl::Milliseconds(20), 1), SleepThen(absl::Milliseconds(1), 2)));
  EXPECT_EQ(std::get<0>(all), 1);
  EXPECT_EQ(std::get<1>(all), 2);
  auto any = block_on(when_any(SleepThen(absl::Seconds(30), 1), SleepThen(absl::Milliseconds(1), 2)));
  EXPECT_EQ(any.first, 1u);
  EXPECT_EQ(std::get<1>(any.second), 2);
}

TEST(AsyncTest, WhenAnyCancelsTheLoserWithoutTakingItsValue) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  auto receive = [&]() -> Task<int> { co_return (co_await rx.async_recv()).value(); };
  auto race = when_any(receive(), SleepThen(absl::Milliseconds(10), -1));
  auto [which, value] = block_on(std::move(race));
  EXPECT_EQ(which, 1u);
  EXPECT_EQ(std::get<1>(value), -1);
  // The cancelled receive took nothing: the value goes to the next one.
  ASSERT_TRUE(tx.send(5).ok());
  EXPECT_EQ(block_on(receive()), 5);
}

// A receive's first try takes only what is queued, not what waits in the
// socket (RecvWait::TryComplete). A value left in the socket while the
// receiver is in user mode (the loop not watching) must still reach a
// coroutine that waits on it among other waits (armed, not parked).
TEST(AsyncTest, AValueWaitingInTheSocketReachesAnArmedReceive) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  auto receive = [&]() -> Task<int> { co_return (co_await rx.async_recv_for(absl::Seconds(30))).value(); };
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(tx.send(round).ok());
    ASSERT_EQ(*rx.recv(), round);            // a blocking recv reads the socket and leaves user mode on
    ASSERT_TRUE(tx.send(100 + round).ok());  // lands in the socket, or the queue if the loop is quick
    auto [which, value] = block_on(when_any(receive(), SleepThen(absl::Seconds(30), -1)));
    ASSERT_EQ(which, 0u) << "round " << round;
    EXPECT_EQ(std::get<0>(value), 100 + round);
  }
}

TEST(AsyncTest, ManyConcurrentWaitsOnOneThread) {
  constexpr int kPeers = 16;
  auto hub = MakePlane(0x100);
  std::vector<std::unique_ptr<DataPlane>> planes;
  std::vector<Receiver<int>> receivers;
  for (int i = 0; i < kPeers; ++i) {
    planes.push_back(MakePlane(0x200 + i));
    receivers.emplace_back(planes.back()->self(), *hub);
  }
  std::thread senders([&] {
    for (int i = kPeers - 1; i >= 0; --i) {
      Sender<int> tx(hub->self(), *planes[i]);
      ASSERT_TRUE(tx.send(i * 10).ok());
    }
  });
  auto receive = [](Receiver<int>& rx) -> Task<int> { co_return (co_await rx.async_recv()).value(); };
  std::vector<Task<int>> tasks;
  for (auto& rx : receivers) tasks.push_back(receive(rx));
  std::vector<int> got = block_on(when_all(std::move(tasks)));
  senders.join();
  for (int i = 0; i < kPeers; ++i) EXPECT_EQ(got[i], i * 10);
}

TEST(AsyncTest, SelectAsyncRunsOneCase) {
  Pair p;
  auto c = MakePlane(0xc);
  Sender<int> from_b(p.a->self(), *p.b);
  Receiver<int> rb(p.b->self(), *p.a);
  Receiver<int> rc(c->self(), *p.a);
  int got = 0;
  std::thread t([&] { ASSERT_TRUE(from_b.send(9).ok()); });
  auto pick = [&]() -> Task<absl::StatusOr<size_t>> {
    co_return co_await select_async(on_recv(rb, [&](absl::StatusOr<int> v) { got = *v; }),
                                    on_recv(rc, [&](absl::StatusOr<int>) { got = -1; }));
  };
  absl::StatusOr<size_t> which = block_on(pick());
  t.join();
  ASSERT_TRUE(which.ok()) << which.status();
  EXPECT_EQ(*which, 0u);
  EXPECT_EQ(got, 9);
  auto timeout = [&]() -> Task<absl::StatusOr<size_t>> {
    co_return co_await select_async(on_recv(rc, [&](absl::StatusOr<int>) { got = -1; }), absl::Milliseconds(10));
  };
  EXPECT_TRUE(absl::IsDeadlineExceeded(block_on(timeout()).status()));
  EXPECT_EQ(got, 9);
}

}  // namespace
}  // namespace constellation

namespace constellation {
namespace {

TEST(AsyncTest, DestroyingASuspendedTaskUnregistersItsWait) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  auto receive = [&]() -> Task<int> { co_return (co_await rx.async_recv()).value(); };
  auto outer = [&]() -> Task<int> {
    {
      // Started by when_any, suspended on the channel, then cancelled.
      auto [which, v] = co_await when_any(receive(), SleepThen(absl::Milliseconds(5), 7));
      if (which != 1) co_return -1;
    }
    // Values sent after the cancellation fire nothing freed, and reach the next receive.
    for (int i = 0; i < 100; ++i) {
      if (!tx.send(i).ok()) co_return -2;
    }
    int sum = 0;
    for (int i = 0; i < 100; ++i) sum += co_await receive();
    co_return sum;
  };
  EXPECT_EQ(block_on(outer()), 4950);
}

TEST(AsyncTest, AsyncSendWaitsForRoomThenDelivers) {
  Pair p;  // TestOptions: 64 frames per direction
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  constexpr int kCount = 2000;  // far past the bound: the sender must wait for room
  std::atomic<int> received{0};
  std::thread receiver([&] {
    for (int i = 0; i < kCount; ++i) {
      absl::StatusOr<int> v = rx.recv();
      ASSERT_TRUE(v.ok()) << v.status();
      ASSERT_EQ(*v, i);
      if (i % 500 == 0) absl::SleepFor(absl::Milliseconds(5));  // let the sender fill the bound
      received.fetch_add(1);
    }
  });
  auto send_all = [&]() -> Task<absl::Status> {
    for (int i = 0; i < kCount; ++i) {
      absl::Status s = co_await tx.async_send(i);
      if (!s.ok()) co_return s;
    }
    co_return absl::OkStatus();
  };
  absl::Status status = block_on(send_all());
  receiver.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(received.load(), kCount);
}

TEST(AsyncTest, BlockingAndAsyncReceiversOnOneChannelFromTwoThreadsShareTheValues) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  constexpr int kCount = 2000;
  std::atomic<int> blocking_sum{0};
  std::atomic<int> got{0};
  std::thread blocking([&] {
    while (got.load() < kCount) {
      absl::StatusOr<int> v = rx.recv_for(absl::Milliseconds(20));
      if (v.ok()) {
        blocking_sum.fetch_add(*v);
        got.fetch_add(1);
      }
    }
  });
  auto async_side = [&]() -> Task<int> {
    int sum = 0;
    while (got.load() < kCount) {
      absl::StatusOr<int> v = co_await rx.async_recv_for(absl::Milliseconds(20));
      if (v.ok()) {
        sum += *v;
        got.fetch_add(1);
      }
    }
    co_return sum;
  };
  std::thread sender([&] {
    for (int i = 1; i <= kCount; ++i) ASSERT_TRUE(tx.send(i).ok());
  });
  int async_sum = block_on(async_side());
  sender.join();
  blocking.join();
  EXPECT_EQ(async_sum + blocking_sum.load(), kCount * (kCount + 1) / 2);
}

TEST(AsyncTest, StreamEndsWithNullopt) {
  Pair p;
  Sender<std::optional<int>> out(p.b->self(), *p.a);
  Receiver<std::optional<int>> in(p.a->self(), *p.b);
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(out.send(i).ok());
  ASSERT_TRUE(out.send(std::nullopt).ok());
  auto drain = [&]() -> Task<int> {
    int sum = 0;
    while (true) {
      absl::StatusOr<std::optional<int>> item = co_await in.async_recv();
      if (!item.ok()) co_return -1;
      if (!item->has_value()) co_return sum;
      sum += **item;
    }
  };
  EXPECT_EQ(block_on(drain()), 55);
}

TEST(AsyncTest, StreamHelpers) {
  Pair p;
  StreamSender<std::string> out(p.b->self(), *p.a);
  StreamReceiver<std::string> in(p.a->self(), *p.b);
  ASSERT_TRUE(out.send("a").ok());
  ASSERT_TRUE(out.send("b").ok());
  ASSERT_TRUE(out.close().ok());
  std::string joined;
  auto consume = [&]() -> Task<absl::Status> { co_return co_await for_each(in, [&](std::string s) { joined += s; }); };
  EXPECT_TRUE(block_on(consume()).ok());
  EXPECT_EQ(joined, "ab");
  EXPECT_TRUE(in.closed());
  absl::StatusOr<std::optional<std::string>> after = in.next();  // closed for good
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
}

TEST(AsyncTest, YieldLetsOtherCoroutinesRun) {
  std::string order;
  auto step = [&](char name) -> Task<void> {
    for (int i = 0; i < 3; ++i) {
      order += name;
      co_await yield_now();
    }
  };
  block_on(when_all(step('a'), step('b')));
  EXPECT_EQ(order, "ababab");
}

TEST(AsyncTest, ExceptionsReachTheAwaiter) {
  auto thrower = []() -> Task<int> {
    throw std::runtime_error("boom");
    co_return 1;
  };
  auto outer = [&]() -> Task<std::string> {
    try {
      co_await thrower();
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  EXPECT_EQ(block_on(outer()), "boom");
}

}  // namespace
}  // namespace constellation
