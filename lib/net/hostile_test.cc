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

using net::testing::HeaderBytes;
using net::testing::RawDial;
using net::testing::TestSecret;

// Blocks until the data plane closes `fd` (reads and ignores what it sends).
void ExpectClosedByPeer(int fd) { net::testing::ReadUntilClosed(fd); }

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

// A process of the deployment (it holds the secret) that sends a header
// claiming more than kMaxFramePayload is dropped: the claim is refused.
TEST_F(HostileTest, TenGibibyteClaimAfterHandshake) {
  ExpectChannelWorks();
  Pid fake = Pid::FromIpv4(0x7f000001, 1, 0xbad);
  net::testing::RawHello hello =
      RawDial(b_->self(), fake, b_->self(), TestSecret(), HeaderBytes(net::FrameKind::kData, uint64_t{10} << 30));
  ASSERT_TRUE(hello.verdict.ok()) << hello.verdict.status();
  EXPECT_EQ(hello.verdict->kind, net::HelloKind::kAccept);
  ExpectClosedByPeer(hello.fd);
  ExpectChannelWorks();
}

// Without the secret the same attack does not get as far as the header.
TEST_F(HostileTest, TenGibibyteClaimAfterForgedHandshake) {
  ExpectChannelWorks();
  Pid fake = Pid::FromIpv4(0x7f000001, 1, 0xbad);
  net::testing::RawHello hello = RawDial(b_->self(), fake, b_->self(), std::string(net::kSecretSize, 'x'),
                                         HeaderBytes(net::FrameKind::kData, uint64_t{10} << 30));
  EXPECT_FALSE(hello.verdict.ok());
  ExpectClosedByPeer(hello.fd);
  ExpectChannelWorks();
}

TEST_F(HostileTest, TruncatedFrame) {
  ExpectChannelWorks();
  Pid fake = Pid::FromIpv4(0x7f000001, 2, 0xbad);
  net::testing::RawHello hello =
      RawDial(b_->self(), fake, b_->self(), TestSecret(), HeaderBytes(net::FrameKind::kData, 1000) + "abc");
  ASSERT_TRUE(hello.verdict.ok()) << hello.verdict.status();
  ExpectChannelWorks();
  close(hello.fd);
  ExpectChannelWorks();
}

// A process of the deployment that dials a Pid that is not this process
// (same address and port, another nonce) is told so.
TEST_F(HostileTest, HandshakeForSomebodyElse) {
  ExpectChannelWorks();
  Pid other = Pid::FromIpv4(0x7f000001, b_->self().port(), b_->self().nonce() + 1);
  net::testing::RawHello hello = RawDial(b_->self(), Pid::FromIpv4(0x7f000001, 3, 3), other, TestSecret());
  ASSERT_TRUE(hello.verdict.ok()) << hello.verdict.status();
  EXPECT_EQ(hello.verdict->kind, net::HelloKind::kWrongPid);
  ExpectClosedByPeer(hello.fd);
  ExpectChannelWorks();
}

}  // namespace
}  // namespace constellation
