// What a connection can cost a process: memory is allocated as bytes arrive,
// not on a header's claim; a hello or a frame that stops making progress is
// closed; and a flood of connections that never prove themselves holds at
// most max_unauthenticated of them while real peers still get in.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "lib/net/channel.h"
#include "lib/net/handshake.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::HelloKind;
using net::HelloMessage;
using net::testing::HeaderBytes;
using net::testing::kStillOpen;
using net::testing::MakePlane;
using net::testing::RawConnect;
using net::testing::RawDial;
using net::testing::ReadHello;
using net::testing::ReadUntilClosed;
using net::testing::TestOptions;
using net::testing::TestSecret;
using net::testing::WriteAll;

// A field of /proc/self/status, in KiB.
uint64_t StatusKiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::string digits;
    for (char c : line) {
      if (c >= '0' && c <= '9') digits += c;
    }
    uint64_t v = 0;
    if (absl::SimpleAtoi(digits, &v)) return v;
  }
  ADD_FAILURE() << "no " << field << " in /proc/self/status";
  return 0;
}

// Resets VmHWM (the peak RSS) to the current RSS.
void ResetPeakRss() {
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  ASSERT_NE(f, nullptr) << "cannot open /proc/self/clear_refs";
  std::fputs("5", f);
  std::fclose(f);
}

std::string DialBytes() {
  HelloMessage dial;
  dial.kind = HelloKind::kDial;
  dial.nonce = net::NewNonce();
  return EncodeHello(dial);
}

// A process of the deployment sends a header claiming 2 GiB, a few bytes, then
// nothing: the receiver's peak RSS barely moves, and the connection is
// closed once it has made no progress for stall_timeout (the peer is gone).
TEST(BoundsTest, TwoGibibyteClaimCostsNothingAndStallsAreClosed) {
  net::DataPlane::Options options = TestOptions();
  options.stall_timeout = absl::Milliseconds(400);
  auto b = MakePlane(0xb, options);
  Pid fake = Pid::FromIpv4(0x7f000001, 7, 0xbad);
  const uint64_t before = StatusKiB("VmRSS");
  ResetPeakRss();
  net::testing::RawHello hello =
      RawDial(b->self(), fake, b->self(), TestSecret(),
              HeaderBytes(net::FrameKind::kData, uint64_t{2} << 30) + std::string(1000, 'x'));
  ASSERT_TRUE(hello.verdict.ok()) << hello.verdict.status();
  ASSERT_EQ(hello.verdict->kind, HelloKind::kAccept);
  EXPECT_EQ(ReadUntilClosed(hello.fd), "");
  const uint64_t peak = StatusKiB("VmHWM");
  EXPECT_LT(peak, before + 64 * 1024) << "peak RSS grew by " << (peak - before) / 1024 << " MiB";
  Receiver<int> rx(fake, *b);
  absl::StatusOr<int> v = rx.recv();
  ASSERT_TRUE(absl::IsUnavailable(v.status())) << v.status();
  EXPECT_NE(v.status().message().find("no progress in the middle of a frame"), std::string::npos) << v.status();
}

// The same stall while a thread is already asleep in recv, holding the read
// role (it sleeps in the socket's blocking recv, not in poll): the stall
// check still ends the connection, and the sleeping recv wakes with the
// error rather than waiting for bytes that never come.
TEST(BoundsTest, AStallWakesAReceiverSleepingInTheSocket) {
  net::DataPlane::Options options = TestOptions();
  options.stall_timeout = absl::Milliseconds(400);
  auto b = MakePlane(0xb, options);
  Pid fake = Pid::FromIpv4(0x7f000001, 7, 0xbad);
  net::testing::RawHello hello = RawDial(b->self(), fake, b->self(), TestSecret(),
                                         HeaderBytes(net::FrameKind::kData, 4000) + std::string(1000, 'x'));
  ASSERT_TRUE(hello.verdict.ok()) << hello.verdict.status();
  // Well inside the stall timeout: the receiver takes the read role, finds
  // the frame unfinished and sleeps in the socket's recv.
  Receiver<int> rx(fake, *b);
  absl::StatusOr<int> v;
  std::thread reader([&] { v = rx.recv(); });
  ASSERT_TRUE(net::testing::WaitUntilUserReading(net::ChannelAccess::PeerOf(rx))) << "no thread took the read role";
  EXPECT_EQ(ReadUntilClosed(hello.fd), "");
  reader.join();
  ASSERT_TRUE(absl::IsUnavailable(v.status())) << v.status();
  EXPECT_NE(v.status().message().find("no progress in the middle of a frame"), std::string::npos) << v.status();
}

// Values still cross intact when they arrive in pieces far apart.
TEST(BoundsTest, BigValueInSlowPiecesArrivesIntact) {
  auto a = MakePlane(0xa);
  auto b = MakePlane(0xb);
  Sender<std::string> tx(b->self(), *a);
  Receiver<std::string> rx(a->self(), *b);
  std::string value(3 << 20, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 131 + (i >> 12));
  ASSERT_TRUE(tx.send(value).ok());
  absl::StatusOr<std::string> got = rx.recv();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == value);
}

// A dialer that keeps trickling its hello, never finishing it, is closed at
// hello_timeout however steadily it trickles; one that sends nothing too.
TEST(BoundsTest, UnfinishedHellosAreClosed) {
  net::DataPlane::Options options = TestOptions();
  options.hello_timeout = absl::Milliseconds(300);
  auto b = MakePlane(0xb, options);
  int silent = RawConnect(b->self());
  ASSERT_GE(silent, 0);
  int fd = RawConnect(b->self());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, DialBytes()));
  absl::StatusOr<HelloMessage> challenge = ReadHello(fd);
  ASSERT_TRUE(challenge.ok()) << challenge.status();
  HelloMessage proof;
  proof.kind = HelloKind::kProof;
  std::string bytes = EncodeHello(proof);
  bytes.pop_back();  // never complete
  bool closed = false;
  for (char c : bytes) {
    if (!WriteAll(fd, std::string(1, c))) {
      closed = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) > 0) {
      closed = true;
      break;
    }
  }
  if (!closed) {
    // Every byte went out before the bound: the connection must still be closed.
    EXPECT_EQ(ReadUntilClosed(fd), "");
  } else {
    ReadUntilClosed(fd);
  }
  EXPECT_EQ(ReadUntilClosed(silent), "");
  EXPECT_EQ(b->unauthenticated_connections(), 0u);
}

// Connections that each send a well-formed dial and then nothing, 1,100 of
// them: the process holds at most max_unauthenticated at a time (the flood
// cannot use up its fds), and a real peer dialing in the middle of the flood
// still connects (told kBusy, it dials again) and delivers.
TEST(BoundsTest, FloodOfUnprovedConnectionsIsBoundedAndRealPeersGetIn) {
  constexpr int kFlood = 1100;
  net::DataPlane::Options options = TestOptions();
  options.max_unauthenticated = 64;
  options.hello_timeout = absl::Seconds(120);  // only eviction closes them here
  auto b = MakePlane(0xb, options);
  auto a = MakePlane(0xa);
  std::atomic<int> made{0};
  std::atomic<size_t> most_seen{0};
  std::vector<int> open;
  auto reap = [&] { net::testing::CloseThoseClosedByPeer(&open); };  // those b has closed
  std::thread flood([&] {
    for (int i = 0; i < kFlood; ++i) {
      int fd = RawConnect(b->self());
      if (fd < 0) {
        reap();
        --i;
        continue;
      }
      WriteAll(fd, DialBytes());
      open.push_back(fd);
      made.store(i + 1);
      size_t now = b->unauthenticated_connections();
      if (now > most_seen.load()) most_seen.store(now);
      if (i % 32 == 31) reap();
    }
  });
  while (made.load() < kFlood / 3) std::this_thread::yield();
  Sender<int> tx(b->self(), *a);
  ASSERT_TRUE(tx.send(42).ok());
  flood.join();
  ASSERT_TRUE(b->WaitForOpenConnections(1, absl::Seconds(60))) << "the real peer never got in";
  Receiver<int> rx(a->self(), *b);
  absl::StatusOr<int> v = rx.recv();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 42);
  // Once b has accepted them all, at most 64 of the flood's are still open.
  absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (b->connections_evicted() + b->unauthenticated_connections() < kFlood && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE(b->connections_evicted(), static_cast<uint64_t>(kFlood - 64));
  EXPECT_LE(most_seen.load(), 64u);
  EXPECT_LE(b->unauthenticated_connections(), 64u);
  absl::Time settle = absl::Now() + absl::Seconds(60);
  do {
    reap();
  } while (open.size() > 64 && absl::Now() < settle);
  EXPECT_LE(open.size(), 64u);
  for (int fd : open) close(fd);
}

}  // namespace
}  // namespace constellation
