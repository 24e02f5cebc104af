// Strings and vectors of numbers are sent from the caller's memory
// (Peer::SendParts) as their bytes alone (lib/core/channel_value.h): values
// arrive whole and in order whatever part of a frame a sendmsg takes, and
// whether they went in place or were queued.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "lib/net/channel.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::DataPlane;
using net::testing::HeaderBytes;
using net::testing::MakePlane;

using Pair = net::testing::PlanePair;

std::string Pattern(size_t size, int seed) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(i * 131 + (i >> 12) + seed);
  return s;
}

// Big values (each partly written while the receiver lags, the rest queued)
// interleaved with small ones (queued behind the rest): all arrive, in order.
TEST(InPlaceTest, BigAndSmallStringsArriveWholeAndInOrder) {
  Pair p;
  constexpr int kRounds = 12;
  std::thread sender([&] {
    Sender<std::string> tx(p.b->self(), *p.a);
    for (int i = 0; i < kRounds; ++i) {
      std::string big = Pattern((1 << 20) + i, i);
      ASSERT_TRUE(tx.send(big).ok());
      big.assign(big.size(), 'z');  // the sender's memory is its own again once send returns
      ASSERT_TRUE(tx.send(std::to_string(i)).ok());
      ASSERT_TRUE(tx.send(Pattern(20000 + i, i)).ok());  // just above the in-place threshold
    }
  });
  Receiver<std::string> rx(p.a->self(), *p.b);
  for (int i = 0; i < kRounds; ++i) {
    if (i % 3 == 0) std::this_thread::yield();  // the receiver lags now and then
    absl::StatusOr<std::string> big = rx.recv();
    ASSERT_TRUE(big.ok()) << big.status();
    ASSERT_TRUE(*big == Pattern((1 << 20) + i, i)) << "round " << i << ": " << big->size() << " bytes";
    absl::StatusOr<std::string> small = rx.recv();
    ASSERT_TRUE(small.ok()) << small.status();
    EXPECT_EQ(*small, std::to_string(i));
    absl::StatusOr<std::string> medium = rx.recv();
    ASSERT_TRUE(medium.ok()) << medium.status();
    ASSERT_TRUE(*medium == Pattern(20000 + i, i)) << "round " << i;
  }
  sender.join();
}

// A ping-pong of big values: each send finds the connection free and goes
// out in place.
TEST(InPlaceTest, BigStringsEchoed) {
  Pair p;
  std::thread echo([&] {
    Receiver<std::string> rx(p.a->self(), *p.b);
    Sender<std::string> tx(p.a->self(), *p.b);
    for (int i = 0; i < 50; ++i) {
      absl::StatusOr<std::string> got = rx.recv();
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_TRUE(tx.send(*got).ok());
    }
  });
  Sender<std::string> tx(p.b->self(), *p.a);
  Receiver<std::string> rx(p.b->self(), *p.a);
  for (int i = 0; i < 50; ++i) {
    const std::string value = Pattern(65536 + 1000 * i, i);
    ASSERT_TRUE(tx.send(value).ok());
    absl::StatusOr<std::string> back = rx.recv();
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_TRUE(*back == value) << "round " << i;
  }
  echo.join();
}

TEST(InPlaceTest, VectorsOfNumbersRoundTrip) {
  Pair p;
  Sender<std::vector<double>> dtx(p.b->self(), *p.a);
  Receiver<std::vector<double>> drx(p.a->self(), *p.b);
  Sender<std::vector<int32_t>> itx(p.a->self(), *p.b);
  Receiver<std::vector<int32_t>> irx(p.b->self(), *p.a);
  for (size_t n : {size_t{0}, size_t{1}, size_t{3000}, size_t{200000}}) {
    std::vector<double> d(n);
    std::vector<int32_t> v(n);
    for (size_t i = 0; i < n; ++i) {
      d[i] = static_cast<double>(i) / 3.0;
      v[i] = static_cast<int32_t>(i * 2654435761u);
    }
    std::thread send([&] {
      ASSERT_TRUE(dtx.send(d).ok());
      ASSERT_TRUE(itx.send(v).ok());
    });
    absl::StatusOr<std::vector<double>> got_d = drx.recv();
    absl::StatusOr<std::vector<int32_t>> got_v = irx.recv();
    send.join();
    ASSERT_TRUE(got_d.ok() && got_v.ok()) << got_d.status() << got_v.status();
    EXPECT_TRUE(*got_d == d) << n;
    EXPECT_TRUE(*got_v == v) << n;
  }
}

// What a Sender<T> of a fake process writes: an Open frame, then data frames
// of `payloads` as they are.
template <class T>
std::string FramesOf(const std::vector<std::string>& payloads) {
  std::string name(type_name<T>());
  std::string bytes = HeaderBytes(net::FrameKind::kOpen, name.size(), type_fingerprint<T>()) + name;
  for (const std::string& p : payloads) {
    bytes += HeaderBytes(net::FrameKind::kData, p.size(), type_fingerprint<T>()) + p;
  }
  return bytes;
}

// Reads exactly `n` bytes from the blocking socket `fd`, waiting at most 30 s
// for each piece; fewer if it closes or stalls.
std::string ReadBytes(int fd, size_t n) {
  std::string got;
  std::string buffer(1 << 20, '\0');
  while (got.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 30000) != 1) break;
    ssize_t r = read(fd, buffer.data(), std::min(buffer.size(), n - got.size()));
    if (r <= 0) break;
    got.append(buffer.data(), static_cast<size_t>(r));
  }
  return got;
}

// A big value the socket cannot take whole is written from the sender's
// memory while the connection makes progress. Toward a peer that reads
// nothing, send still returns (the rest is copied and buffered, as the bound
// allows one value), and what is then written is the value as it was, not
// what the caller later does with its memory.
TEST(InPlaceTest, ASendToAPeerThatReadsNothingReturnsAndItsValueIsIntact) {
  net::testing::Listener raw = net::testing::Listen(0x3700);
  const int small = 64 << 10;  // the raw end's receive buffer: the kernel takes little
  ASSERT_EQ(setsockopt(raw.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  std::unique_ptr<DataPlane> plane = MakePlane(0x3800);
  Sender<std::string> tx(raw.pid, *plane);
  ASSERT_TRUE(tx.send(std::string("hello")).ok());  // dials
  const int fd = net::testing::RawAccept(raw.fd, raw.pid, net::testing::TestSecret());
  ASSERT_GE(fd, 0);
  const std::string first = FramesOf<std::string>({"hello"});
  ASSERT_EQ(ReadBytes(fd, first.size()), first);  // the connection is up: the next send goes in place

  const std::string value = Pattern(16 << 20, 9);  // more than the socket buffers hold
  std::string mine = value;
  absl::Notification sent;
  std::thread sender([&] {
    EXPECT_TRUE(tx.send(mine).ok());
    mine.assign(mine.size(), 'z');  // the caller's memory is its own again
    sent.Notify();
  });
  const bool returned = sent.WaitForNotificationWithTimeout(absl::Seconds(30));
  EXPECT_TRUE(returned) << "send waited for a peer that reads nothing";
  const std::string want = HeaderBytes(net::FrameKind::kData, value.size(), type_fingerprint<std::string>()) + value;
  const std::string got = ReadBytes(fd, want.size());
  sender.join();
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "the value arrived changed";
  close(fd);
  close(raw.fd);
}

// On the wire a string is its bytes, a vector its elements' bytes: no count.
// A vector's payload that is not a whole number of elements is refused.
TEST(InPlaceTest, OnTheWireAValueIsItsBytesAlone) {
  auto b = MakePlane(0xb);
  const Pid strings = Pid::FromIpv4(0x7f000001, 7, 0x51);
  const Pid vectors = Pid::FromIpv4(0x7f000001, 7, 0x52);
  const std::string big(100000, 'b');
  net::testing::RawHello s = net::testing::RawDial(b->self(), strings, b->self(), net::testing::TestSecret(),
                                                   FramesOf<std::string>({"hello", "", big}));
  ASSERT_TRUE(s.verdict.ok()) << s.verdict.status();
  Receiver<std::string> rx(strings, *b);
  for (const std::string& want : {std::string("hello"), std::string(), big}) {
    absl::StatusOr<std::string> got = rx.recv();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == want) << got->size() << " bytes";
  }
  const int32_t two[2] = {7, -7};
  net::testing::RawHello v = net::testing::RawDial(
      b->self(), vectors, b->self(), net::testing::TestSecret(),
      FramesOf<std::vector<int32_t>>({std::string(reinterpret_cast<const char*>(two), 8), "123456"}));
  ASSERT_TRUE(v.verdict.ok()) << v.verdict.status();
  Receiver<std::vector<int32_t>> vrx(vectors, *b);
  absl::StatusOr<std::vector<int32_t>> got = vrx.recv();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<int32_t>{7, -7}));
  got = vrx.recv();
  EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  close(s.fd);
  close(v.fd);
}

}  // namespace
}  // namespace constellation
