// The receive fast path: a thread blocked in recv reads the socket itself
// (Peer's read role), handing control frames and the connection's end to the
// loop. These tests check that it is used, and that order, back-pressure,
// idle teardown, peer failure and select keep working around it.
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "lib/net/channel.h"
#include "lib/net/select.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::DataPlane;
using net::testing::MakePlane;
using net::testing::TestOptions;

using Pair = net::testing::PlanePair;

TEST(FastPathTest, ReceiverBlockedBeforeTheFrameArrivesReadsItItself) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<int> got;
    std::thread reader([&] { got = rx.recv(); });
    ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
    ASSERT_TRUE(tx.send(i).ok());
    reader.join();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, i);
  }
  EXPECT_GE(net::ChannelAccess::PeerOf(rx).fast_path_frames(), 20u);
}

TEST(FastPathTest, PingPongUsesTheFastPath) {
  Pair p;
  constexpr int kRounds = 3000;
  std::thread echo([&] {
    Receiver<int> rx(p.a->self(), *p.b);
    Sender<int> tx(p.a->self(), *p.b);
    for (int i = 0; i < kRounds; ++i) ASSERT_TRUE(tx.send(*rx.recv() + 1).ok());
  });
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.b->self(), *p.a);
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(tx.send(i).ok());
    absl::StatusOr<int> v = rx.recv();
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(*v, i + 1);
  }
  echo.join();
  // Most replies arrive while the receiver waits in recv (not all: the echo
  // may answer before recv is called, and then the loop reads it).
  EXPECT_GT(net::ChannelAccess::PeerOf(rx).fast_path_frames(), 0u);
}

TEST(FastPathTest, TypeNameOfAFrameReadByTheReceiverItself) {
  Pair p;
  Sender<std::string> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  absl::StatusOr<int> got;
  std::thread reader([&] { got = rx.recv(); });
  ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
  ASSERT_TRUE(tx.send("hello").ok());  // Open + data, read by the receiver's thread
  reader.join();
  ASSERT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_NE(got.status().message().find(std::string(type_name<std::string>())), std::string::npos) << got.status();
}

// Loop reads (the receiver is busy elsewhere), user reads (it waits in recv)
// and deadlines that give the role back at random points: one FIFO stream.
TEST(FastPathTest, InterleavedLoopAndUserReadsKeepOrder) {
  Pair p;
  constexpr int kCount = 20000;
  std::thread sender([&] {
    Sender<std::pair<int, std::string>> tx(p.b->self(), *p.a);
    uint32_t seed = 1;
    for (int i = 0; i < kCount; ++i) {
      ASSERT_TRUE(tx.send({i, std::string(i % 50, 'v')}).ok());
      seed = seed * 1103515245 + 12345;
      if ((seed >> 16) % 64 == 0) std::this_thread::yield();
      if ((seed >> 16) % 997 == 0) absl::SleepFor(absl::Microseconds(200));  // pauses: the receiver waits
    }
  });
  Receiver<std::pair<int, std::string>> rx(p.a->self(), *p.b);
  uint32_t seed = 7;
  for (int i = 0; i < kCount;) {
    seed = seed * 1103515245 + 12345;
    absl::StatusOr<std::pair<int, std::string>> v;
    switch ((seed >> 16) % 4) {
      case 0:
        v = rx.try_recv();
        break;
      case 1:
        v = rx.recv_for(absl::Microseconds((seed >> 8) % 300));
        break;
      default:
        v = rx.recv();
        break;
    }
    if (absl::IsDeadlineExceeded(v.status())) continue;
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(v->first, i);
    ASSERT_EQ(v->second.size(), static_cast<size_t>(i % 50));
    ++i;
  }
  sender.join();
}

// After a recv that read the socket itself, the socket stays out of the
// loop's sight for the next recv ("user mode"); with no recv coming, the
// loop's lease takes it back and reads what arrives (RecvReady: queued).
TEST(FastPathTest, LoopTakesTheSocketBackWhenNoRecvComes) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<int> got;
    std::thread reader([&] { got = rx.recv(); });
    ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
    ASSERT_TRUE(tx.send(i).ok());
    reader.join();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(tx.send(100 + i).ok());
    absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (!net::ChannelAccess::PeerOf(rx).RecvReady()) {
      ASSERT_LT(absl::Now(), give_up) << "nobody read the socket";
      std::this_thread::yield();
    }
    EXPECT_EQ(*rx.recv(), 100 + i);
  }
}

// try_recv after fast-path reads sees what arrived without waiting for the
// loop (it looks at the socket itself once).
TEST(FastPathTest, TryRecvInUserMode) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(tx.send(i).ok());
    absl::StatusOr<int> got = rx.try_recv();
    while (absl::IsDeadlineExceeded(got.status())) got = rx.try_recv();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(*got, i);
  }
}

// A receiver that gave up (deadline) released the role: what arrives next is
// read by the loop and seen by select, which never reads the socket itself.
TEST(FastPathTest, FrameAfterTheReceiverGaveUpIsStillRead) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  for (int i = 0; i < 50; ++i) {
    std::thread late([&] { ASSERT_TRUE(tx.send(i).ok()); });
    absl::StatusOr<int> first = rx.recv_for(absl::Microseconds(i * 20));
    late.join();
    int got = -1;
    if (first.ok()) {
      got = *first;
    } else {
      ASSERT_TRUE(absl::IsDeadlineExceeded(first.status())) << first.status();
      absl::StatusOr<size_t> which =
          select({on_recv(rx, [&](absl::StatusOr<int> v) { got = v.ok() ? *v : -2; })}, absl::Seconds(30));
      ASSERT_TRUE(which.ok()) << which.status();
    }
    EXPECT_EQ(got, i);
  }
}

// Idle teardown while the receiver's thread holds the read role: b, idle,
// proposes closing; a's blocked receiver reads the Close and hands it to the
// loop, which refuses (a has a Receiver); b's next values flow on the same
// connection.
TEST(FastPathTest, CloseArrivingWhileTheReceiverReadsIsHandled) {
  DataPlane::Options options = TestOptions();
  options.idle_timeout = absl::Milliseconds(5);
  auto a = MakePlane(0xa, options);
  auto b = MakePlane(0xb, options);
  Receiver<int> rx(b->self(), *a);
  for (int round = 0; round < 5; ++round) {
    absl::StatusOr<int> got;
    std::thread reader([&] { got = rx.recv(); });
    ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
    // Idle timers run on b while a's thread waits in recv (nothing to wait on:
    // the Close and its refusal are internal).
    absl::SleepFor(absl::Milliseconds(30));
    {
      Sender<int> tx(a->self(), *b);
      ASSERT_TRUE(tx.send(round).ok());
    }
    reader.join();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, round);
  }
  EXPECT_EQ(a->connections_opened(), 1u);
  EXPECT_EQ(b->connections_opened(), 1u);
}

// Idle teardown completes (both sides idle) and a new connection is read by a
// receiver created afterwards.
TEST(FastPathTest, ReceiverReadsTheNextConnectionAfterAnIdleClose) {
  DataPlane::Options options = TestOptions();
  options.idle_timeout = absl::Milliseconds(5);
  auto a = MakePlane(0xa, options);
  auto b = MakePlane(0xb, options);
  for (int round = 0; round < 3; ++round) {
    Receiver<int> rx(b->self(), *a);
    absl::StatusOr<int> got;
    std::thread reader([&] { got = rx.recv(); });
    {
      Sender<int> tx(a->self(), *b);
      ASSERT_TRUE(tx.send(round).ok());
    }
    reader.join();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, round);
  }
}

TEST(FastPathTest, PeerDyingWhileTheReceiverReads) {
  Pair p;
  Receiver<int> rx(p.b->self(), *p.a);
  {
    Sender<int> tx(p.a->self(), *p.b);
    ASSERT_TRUE(tx.send(1).ok());
    EXPECT_EQ(*rx.recv(), 1);
  }
  absl::StatusOr<int> got;
  std::thread reader([&] { got = rx.recv(); });
  ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
  p.b.reset();  // EOF, seen by the reading thread and handed to the loop
  reader.join();
  EXPECT_TRUE(absl::IsUnavailable(got.status())) << got.status();
  EXPECT_TRUE(absl::IsUnavailable(rx.recv().status()));
}

TEST(FastPathTest, PeerDyingMidStreamDeliversEverythingFirst) {
  Pair p;
  Receiver<int> rx(p.b->self(), *p.a);
  std::vector<int> got;
  absl::Status end;
  std::thread reader([&] {
    while (true) {
      absl::StatusOr<int> v = rx.recv();
      if (!v.ok()) {
        end = v.status();
        return;
      }
      got.push_back(*v);
    }
  });
  {
    Sender<int> tx(p.a->self(), *p.b);
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(tx.send(i).ok());
    ASSERT_TRUE(p.b->FlushForExit(absl::Seconds(30)));
  }
  p.b.reset();
  reader.join();
  EXPECT_TRUE(absl::IsUnavailable(end)) << end;
  ASSERT_EQ(got.size(), 500u);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(got[i], i);
}

// The loop ending a connection (Detach) while a thread waits in poll holding
// the read role: shutdown(SHUT_RD) wakes it, Detach waits until it lets go,
// and the peer's failure reaches it. Peer alone, on a socketpair.
TEST(FastPathTest, DetachTakesTheRoleBackFromABlockedReader) {
  int fds[2];
  // Blocking, as a Link leaves a connection's socket once it is open (a user
  // thread sleeps in its recv).
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fds[0];
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &event), 0);
  std::atomic<int> downs{0};
  net::Peer::Hooks hooks;
  hooks.want_write = [](const Pid&) {};
  hooks.want_flush = [](const Pid&) {};
  hooks.resume_read = [](const Pid&) {};
  hooks.control = [](const Pid&, uint64_t, const net::FrameHeader&) {};
  hooks.read_down = [&](const Pid&, uint64_t, absl::Status) { ++downs; };
  hooks.lease = [](const Pid&, uint64_t) {};
  net::Peer peer(Pid::FromIpv4(0x7f000001, 1, 1), net::PeerLimits(), hooks);
  peer.AttachRead(fds[0], ep, 1);
  absl::Status status;
  std::thread reader([&] {
    net::InFrame frame;
    status = peer.Recv(absl::Now() + absl::Seconds(60), &frame);
  });
  ASSERT_TRUE(net::testing::WaitUntilUserReading(peer)) << "no thread took the read role";
  peer.Detach();  // returns only once the reader let go of the socket
  EXPECT_FALSE(peer.UserReading());
  peer.Fail(absl::UnavailableError("gone"));
  reader.join();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  close(ep);
  close(fds[0]);
  close(fds[1]);
}

// One recv that reads a burst fills the queue (the bound is 64 frames in
// tests): reading stops, and resumes as the receiver drains.
TEST(FastPathTest, BackPressureWithTheFastPath) {
  Pair p;
  constexpr int kCount = 5000;
  Receiver<std::string> rx(p.a->self(), *p.b);
  Sender<std::string> tx(p.b->self(), *p.a);
  ASSERT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  absl::StatusOr<std::string> first;
  std::thread reader([&] { first = rx.recv(); });
  ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
  std::thread sender([&] {
    for (int i = 0; i < kCount; ++i) ASSERT_TRUE(tx.send(std::to_string(i) + std::string(i % 100, '.')).ok());
  });
  reader.join();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, "0");
  for (int i = 1; i < kCount; ++i) {
    absl::StatusOr<std::string> v = rx.recv();
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(*v, std::to_string(i) + std::string(i % 100, '.'));
  }
  sender.join();
}

// The receiver stops reading: the sender blocks at the bound even though the
// receiver's thread read the first values itself; reading resumes it.
TEST(FastPathTest, SenderBlocksAtTheBoundAfterFastPathReads) {
  Pair p;
  Sender<std::string> tx(p.b->self(), *p.a);
  Receiver<std::string> rx(p.a->self(), *p.b);
  ASSERT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  const std::string chunk(1000, 'z');
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<std::string> got;
    std::thread reader([&] { got = rx.recv(); });
    ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
    ASSERT_TRUE(tx.send(chunk).ok());
    reader.join();
    ASSERT_TRUE(got.ok());
  }
  int sent = 0;
  while (true) {
    absl::Status s = tx.send_for(chunk, absl::Milliseconds(100));
    if (absl::IsDeadlineExceeded(s)) break;
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_LT(++sent, 64 << 10) << "send never blocked: memory is not bounded";
  }
  for (int i = 0; i < sent; ++i) ASSERT_TRUE(rx.recv().ok());
  EXPECT_TRUE(tx.send_for(chunk, absl::Seconds(30)).ok());
  EXPECT_TRUE(rx.recv().ok());
}

// A big value read by the receiver's thread straight into its buffer, while
// the loop keeps the other direction flowing.
TEST(FastPathTest, BigValueReadByTheReceiver) {
  Pair p;
  std::string big(20 << 20, '\0');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  Sender<std::string> tx(p.b->self(), *p.a);
  Receiver<std::string> rx(p.a->self(), *p.b);
  ASSERT_TRUE(p.b->WaitForOpenConnections(1, absl::Seconds(30)));
  absl::StatusOr<std::string> got;
  std::thread reader([&] { got = rx.recv(); });
  ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
  ASSERT_TRUE(tx.send(big).ok());
  reader.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == big);
}

}  // namespace
}  // namespace constellation
