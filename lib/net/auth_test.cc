// The hello admits only processes holding the deployment's secret: a peer
// without it gets nothing past the challenge (no Pid, no verdict), and none
// of the frames it sends is read.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "lib/core/codec.h"
#include "lib/net/channel.h"
#include "lib/net/handshake.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::HelloKind;
using net::HelloMessage;
using net::testing::HeaderBytes;
using net::testing::MakePlane;
using net::testing::RawConnect;
using net::testing::RawDial;
using net::testing::ReadHello;
using net::testing::ReadUntilClosed;
using net::testing::TestOptions;
using net::testing::TestSecret;
using net::testing::WriteAll;

const std::string kWrongSecret(net::kSecretSize, 'w');

// An Open frame and a data frame carrying `value`, as a Sender<int> writes them.
std::string IntFrames(int value) {
  std::string name(type_name<int>());
  std::string payload = encode(value);
  return HeaderBytes(net::FrameKind::kOpen, name.size(), type_fingerprint<int>()) + name +
         HeaderBytes(net::FrameKind::kData, payload.size(), type_fingerprint<int>()) + payload;
}

std::string PidBytes(const Pid& pid) {
  std::string bytes(reinterpret_cast<const char*>(pid.addr().data()), 16);
  uint16_t port = pid.port();
  uint32_t nonce = pid.nonce();
  bytes.append(reinterpret_cast<const char*>(&port), 2);
  bytes.append(reinterpret_cast<const char*>(&nonce), 4);
  return bytes;
}

// A hello claiming to be process A (which has no connection to B yet), with
// a wrong secret and a value right behind the proof: B closes the connection
// without a verdict, and the value never reaches B's Receiver from A, which
// gets A's real value.
TEST(AuthTest, WrongSecretIsRejectedBeforeAnyFrameIsRead) {
  auto a = MakePlane(0xa);
  auto b = MakePlane(0xb);
  net::testing::RawHello forged = RawDial(b->self(), a->self(), b->self(), kWrongSecret, IntFrames(666));
  EXPECT_FALSE(forged.verdict.ok());
  EXPECT_EQ(ReadUntilClosed(forged.fd), "");
  EXPECT_EQ(b->connections_opened(), 0u);
  Sender<int> tx(b->self(), *a);
  ASSERT_TRUE(tx.send(42).ok());
  ASSERT_TRUE(b->WaitForOpenConnections(1, absl::Seconds(30)));
  Receiver<int> rx(a->self(), *b);
  absl::StatusOr<int> v = rx.recv();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 42);
}

// Planes of two deployments cannot open a channel either way.
TEST(AuthTest, PlanesWithAnotherSecretCannotTalk) {
  auto a = MakePlane(0xa);
  net::DataPlane::Options other = TestOptions();
  other.secret = kWrongSecret;
  auto b = MakePlane(0xb, other);
  Receiver<int> from_b(b->self(), *a);
  absl::StatusOr<int> v = from_b.recv();
  ASSERT_TRUE(absl::IsUnavailable(v.status())) << v.status();
  EXPECT_NE(v.status().message().find("failed to prove itself"), std::string::npos) << v.status();
  Receiver<int> from_a(a->self(), *b);
  v = from_a.recv();
  EXPECT_TRUE(absl::IsUnavailable(v.status())) << v.status();
  EXPECT_EQ(a->connections_opened() + b->connections_opened(), 0u);
}

// A dial for another pid, by a peer without the secret: what comes back is
// the challenge (a nonce and a MAC) and nothing else; no byte of a Pid.
TEST(AuthTest, WrongToLearnsNothing) {
  auto b = MakePlane(0x5eed1234);
  int fd = RawConnect(b->self());
  ASSERT_GE(fd, 0);
  HelloMessage dial;
  dial.kind = HelloKind::kDial;
  dial.nonce = net::NewNonce();
  ASSERT_TRUE(WriteAll(fd, EncodeHello(dial)));
  char got[net::kMaxHelloSize];
  size_t want = net::HelloSize(HelloKind::kChallenge);
  size_t have = 0;
  while (have < want) {
    ssize_t n = read(fd, got + have, want - have);
    ASSERT_GT(n, 0);
    have += static_cast<size_t>(n);
  }
  std::string challenge(got, have);
  HelloMessage proof;
  proof.kind = HelloKind::kProof;
  proof.from = Pid::FromIpv4(0x7f000001, 3, 3);
  proof.to = Pid(b->self().addr(), b->self().port(), b->self().nonce() + 1);
  ASSERT_TRUE(WriteAll(fd, EncodeHello(proof)));
  std::string rest = ReadUntilClosed(fd);
  EXPECT_EQ(rest, "") << "a peer that did not prove itself got a verdict";
  std::string all = challenge + rest;
  uint32_t nonce = b->self().nonce();
  EXPECT_EQ(all.find(std::string(reinterpret_cast<const char*>(&nonce), 4)), std::string::npos);
  EXPECT_EQ(all.find(PidBytes(b->self())), std::string::npos);
}

// The acceptor's own proof sent back as the dialer's fails (the labels differ).
TEST(AuthTest, ReflectedMacFails) {
  auto a = MakePlane(0xa);
  auto b = MakePlane(0xb);
  int fd = RawConnect(b->self());
  ASSERT_GE(fd, 0);
  HelloMessage dial;
  dial.kind = HelloKind::kDial;
  dial.nonce = net::NewNonce();
  ASSERT_TRUE(WriteAll(fd, EncodeHello(dial)));
  absl::StatusOr<HelloMessage> challenge = ReadHello(fd);
  ASSERT_TRUE(challenge.ok()) << challenge.status();
  ASSERT_EQ(challenge->kind, HelloKind::kChallenge);
  HelloMessage proof;
  proof.kind = HelloKind::kProof;
  proof.from = a->self();
  proof.to = b->self();
  proof.mac = challenge->mac;
  ASSERT_TRUE(WriteAll(fd, EncodeHello(proof) + IntFrames(666)));
  EXPECT_EQ(ReadUntilClosed(fd), "");
  EXPECT_EQ(b->connections_opened(), 0u);
}

// A plane given no secret refuses every connection, both ways.
TEST(AuthTest, NoSecretFailsClosed) {
  auto a = MakePlane(0xa);
  net::DataPlane::Options none = TestOptions();
  none.secret.clear();
  auto b = MakePlane(0xb, none);
  Receiver<int> from_a(a->self(), *b);
  absl::StatusOr<int> v = from_a.recv();
  EXPECT_TRUE(absl::IsFailedPrecondition(v.status())) << v.status();
  Receiver<int> from_b(b->self(), *a);
  v = from_b.recv();
  EXPECT_TRUE(absl::IsUnavailable(v.status())) << v.status();
  // A peer with no secret either gets nowhere.
  net::testing::RawHello empty = RawDial(a->self(), b->self(), a->self(), "");
  EXPECT_FALSE(empty.verdict.ok());
  ReadUntilClosed(empty.fd);
  EXPECT_EQ(a->connections_opened() + b->connections_opened(), 0u);
}

}  // namespace
}  // namespace constellation
