// A thread blocked in recv sleeps in the socket's recv itself, its deadline
// kept by SO_RCVTIMEO while it is far and by ppoll once it is near
// (Peer::HowToSleep): a value wakes it, every deadline ends the wait no
// sooner than asked, and a timeout left on the socket by one wait never ends
// another early. A receiver with part of a frame spins only while its
// bytes come fast.
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "lib/core/type_name.h"
#include "lib/net/channel.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::DataPlane;
using net::testing::MakePlane;

using Pair = net::testing::PlanePair;

TEST(RecvSleepTest, AValueWakesAReceiverSleepingInTheSocket) {
  Pair p;
  Sender<std::string> tx(p.b->self(), *p.a);
  Receiver<std::string> rx(p.a->self(), *p.b);
  ASSERT_TRUE(tx.send("first").ok());  // the connection is up
  ASSERT_EQ(*rx.recv(), "first");
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<std::string> got;
    std::thread reader([&] { got = i % 2 == 0 ? rx.recv() : rx.recv_for(absl::Seconds(30)); });
    ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
    ASSERT_TRUE(tx.send(std::to_string(i)).ok());
    reader.join();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, std::to_string(i));
  }
}

// Timeouts on both sides of the ppoll/SO_RCVTIMEO threshold (50 ms), each
// after waits that left a different timeout on the socket.
TEST(RecvSleepTest, EveryDeadlineEndsTheWaitNoSoonerThanAsked) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(tx.send(0).ok());
  ASSERT_EQ(*rx.recv(), 0);
  // A wait right after a long one must not sleep out the long one's timeout.
  for (int ms : {30, 2000, 60, 400, 80, 10, 120}) {
    const absl::Duration timeout = absl::Milliseconds(ms);
    const absl::Time start = absl::Now();
    absl::StatusOr<int> got = rx.recv_for(timeout);
    const absl::Duration took = absl::Now() - start;
    EXPECT_TRUE(absl::IsDeadlineExceeded(got.status())) << ms << " ms: " << got.status();
    EXPECT_GE(took, timeout) << ms << " ms";
    EXPECT_LT(took, timeout + absl::Seconds(1)) << ms << " ms: the wait overran its deadline";
  }
  // recv_until with a deadline already past only looks.
  EXPECT_TRUE(absl::IsDeadlineExceeded(rx.recv_until(absl::Now() - absl::Seconds(1)).status()));
}

// After a short timed wait set a short SO_RCVTIMEO, an untimed recv and a
// long recv_for still wait for a value that comes later than that timeout.
TEST(RecvSleepTest, AShortTimeoutLeftOnTheSocketEndsNoLaterWait) {
  Pair p;
  Sender<int> tx(p.b->self(), *p.a);
  Receiver<int> rx(p.a->self(), *p.b);
  ASSERT_TRUE(tx.send(0).ok());
  ASSERT_EQ(*rx.recv(), 0);
  for (int round = 1; round <= 4; ++round) {
    EXPECT_TRUE(absl::IsDeadlineExceeded(rx.recv_for(absl::Milliseconds(70)).status()));
    std::thread late([&] {
      absl::SleepFor(absl::Milliseconds(150));  // longer than the timeout the last wait set
      ASSERT_TRUE(tx.send(round).ok());
    });
    absl::StatusOr<int> got = round % 2 == 0 ? rx.recv() : rx.recv_for(absl::Seconds(60));
    late.join();
    ASSERT_TRUE(got.ok()) << "round " << round << ": " << got.status();
    EXPECT_EQ(*got, round);
  }
}

// The CPU time the calling thread has used.
absl::Duration ThreadCpu() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return absl::DurationFromTimespec(t);
}

// A receiver with part of a frame read looks at the socket again rather than
// sleep while the frame's bytes come fast (mid_frame_spin.h), but gives up
// once they stop: a frame whose second half comes 800 ms after its first
// arrives whole, to a thread that slept meanwhile (its CPU time stays far
// below the wait, where a spin that never gave up would use most of it).
TEST(RecvSleepTest, AReceiverMissingTheRestOfAFrameSleepsUntilItComes) {
  auto b = MakePlane(0xb);
  const Pid fake = Pid::FromIpv4(0x7f000001, 7, 0xbad);
  std::string value(1 << 20, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 131 + (i >> 12));
  const std::string name(type_name<std::string>());
  const std::string& payload = value;  // a string travels as its bytes (channel_value.h)
  const uint64_t fingerprint = type_fingerprint<std::string>();
  const std::string frames = net::testing::HeaderBytes(net::FrameKind::kOpen, name.size(), fingerprint) + name +
                             net::testing::HeaderBytes(net::FrameKind::kData, payload.size(), fingerprint) + payload;
  const size_t half = frames.size() / 2;
  net::testing::RawHello hello =
      net::testing::RawDial(b->self(), fake, b->self(), net::testing::TestSecret(), frames.substr(0, half));
  ASSERT_TRUE(hello.verdict.ok()) << hello.verdict.status();
  Receiver<std::string> rx(fake, *b);
  absl::StatusOr<std::string> got;
  absl::Duration cpu;
  std::thread reader([&] {
    const absl::Duration before = ThreadCpu();
    got = rx.recv_for(absl::Seconds(60));
    cpu = ThreadCpu() - before;
  });
  ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
  absl::SleepFor(absl::Milliseconds(800));
  ASSERT_TRUE(net::testing::WriteAll(hello.fd, frames.substr(half)));
  reader.join();
  close(hello.fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == value);
  EXPECT_LT(cpu, absl::Milliseconds(250)) << "the receiver spun while the frame's bytes did not come";
}

}  // namespace
}  // namespace constellation
