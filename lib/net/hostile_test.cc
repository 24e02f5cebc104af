// Connections from things that are not processes of the program are dropped
// with a log line and never disturb real channels.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "lib/net/channel.h"
#include "lib/net/frame.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::testing::MakePlane;
using net::testing::RawConnect;
using net::testing::WriteAll;

// Blocks until the data plane closes `fd` (reads and ignores what it sends).
void ExpectClosedByPeer(int fd) {
  char buf[256];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
  }
  close(fd);
}

std::string HelloBytes(const Pid& from, const Pid& to) {
  char bytes[net::kHelloSize];
  net::EncodeHello(net::Hello{net::HelloKind::kDial, from, to}, bytes);
  return std::string(bytes, sizeof(bytes));
}

std::string HeaderBytes(net::FrameKind kind, uint64_t length) {
  char bytes[net::kFrameHeaderSize];
  net::EncodeFrameHeader(net::FrameHeader{kind, net::kChannelForward, 1, 0}, bytes);
  std::memcpy(bytes + 16, &length, 8);  // any length, even one DecodeFrameHeader refuses
  return std::string(bytes, sizeof(bytes));
}

class HostileTest : public ::testing::Test {
 protected:
  void ExpectChannelWorks() {
    ASSERT_TRUE(tx_.send(++n_).ok());
    absl::StatusOr<int> v = rx_.recv();
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, n_);
  }
  std::unique_ptr<net::DataPlane> a_ = MakePlane(0xa);
  std::unique_ptr<net::DataPlane> b_ = MakePlane(0xb);
  Sender<int> tx_{b_->self(), *a_};
  Receiver<int> rx_{a_->self(), *b_};
  int n_ = 0;
};

TEST_F(HostileTest, ConnectAndClose) {
  ExpectChannelWorks();
  for (int i = 0; i < 20; ++i) {
    int fd = RawConnect(b_->self());
    ASSERT_GE(fd, 0);
    close(fd);
  }
  ExpectChannelWorks();
}

TEST_F(HostileTest, GarbageBytes) {
  ExpectChannelWorks();
  int fd = RawConnect(b_->self());
  ASSERT_TRUE(WriteAll(fd, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" + std::string(100, 'x')));
  ExpectClosedByPeer(fd);
  ExpectChannelWorks();
}

TEST_F(HostileTest, TenGibibyteClaimBeforeHandshake) {
  ExpectChannelWorks();
  int fd = RawConnect(b_->self());
  ASSERT_TRUE(WriteAll(fd, HeaderBytes(net::FrameKind::kData, uint64_t{10} << 30) + std::string(64, '\0')));
  ExpectClosedByPeer(fd);
  ExpectChannelWorks();
}

TEST_F(HostileTest, TenGibibyteClaimAfterForgedHandshake) {
  ExpectChannelWorks();
  int fd = RawConnect(b_->self());
  Pid fake = Pid::FromIpv4(0x7f000001, 1, 0xbad);
  ASSERT_TRUE(WriteAll(fd, HelloBytes(fake, b_->self()) + HeaderBytes(net::FrameKind::kData, uint64_t{10} << 30)));
  ExpectClosedByPeer(fd);
  ExpectChannelWorks();
}

TEST_F(HostileTest, TruncatedFrame) {
  ExpectChannelWorks();
  int fd = RawConnect(b_->self());
  Pid fake = Pid::FromIpv4(0x7f000001, 2, 0xbad);
  ASSERT_TRUE(WriteAll(fd, HelloBytes(fake, b_->self()) + HeaderBytes(net::FrameKind::kData, 1000) + "abc"));
  ExpectChannelWorks();
  close(fd);
  ExpectChannelWorks();
}

TEST_F(HostileTest, HandshakeForSomebodyElse) {
  ExpectChannelWorks();
  int fd = RawConnect(b_->self());
  Pid other = Pid::FromIpv4(0x7f000001, b_->self().port(), b_->self().nonce() + 1);
  ASSERT_TRUE(WriteAll(fd, HelloBytes(Pid::FromIpv4(0x7f000001, 3, 3), other)));
  ExpectClosedByPeer(fd);
  ExpectChannelWorks();
}

}  // namespace
}  // namespace constellation
