#include "lib/net/handshake.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace constellation::net {
namespace {

const std::string kSecret(kSecretSize, 'k');

TEST(HandshakeTest, MessagesRoundTrip) {
  HelloMessage proof;
  proof.kind = HelloKind::kProof;
  proof.from = Pid::FromIpv4(0x7f000001, 4000, 7);
  proof.to = Pid::FromIpv4(0x0a000001, 5000, 9);
  proof.mac = DialerMac(kSecret, NewNonce(), NewNonce(), proof.from, proof.to);
  std::string bytes = EncodeHello(proof);
  ASSERT_EQ(bytes.size(), HelloSize(HelloKind::kProof));
  absl::StatusOr<size_t> size = DecodeHelloPrefix(bytes.data());
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, bytes.size());
  HelloMessage back;
  ASSERT_TRUE(DecodeHello(bytes.data(), bytes.size(), &back).ok());
  EXPECT_EQ(back.kind, HelloKind::kProof);
  EXPECT_EQ(back.from, proof.from);
  EXPECT_EQ(back.to, proof.to);
  EXPECT_TRUE(MacEqual(back.mac, proof.mac));
}

TEST(HandshakeTest, UnprovedMessagesCarryNoPid) {
  HelloMessage dial;
  dial.kind = HelloKind::kDial;
  EXPECT_EQ(EncodeHello(dial).size(), kHelloPrefixSize + kNonceSize);
  HelloMessage challenge;
  challenge.kind = HelloKind::kChallenge;
  EXPECT_EQ(EncodeHello(challenge).size(), kHelloPrefixSize + kNonceSize + kMacSize);
  HelloMessage busy;
  busy.kind = HelloKind::kBusy;
  EXPECT_EQ(EncodeHello(busy).size(), kHelloPrefixSize);
}

TEST(HandshakeTest, GarbageAndOldVersionsAreRejected) {
  char bytes[kHelloPrefixSize] = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'};
  EXPECT_FALSE(DecodeHelloPrefix(bytes).ok());
  HelloMessage dial;
  std::string good = EncodeHello(dial);
  std::string v1 = good;
  v1[4] = 1;  // version 1: the unauthenticated hello
  EXPECT_FALSE(DecodeHelloPrefix(v1.data()).ok());
  std::string kind = good;
  kind[6] = 9;
  EXPECT_FALSE(DecodeHelloPrefix(kind.data()).ok());
  std::string reserved = good;
  reserved[7] = 1;
  EXPECT_FALSE(DecodeHelloPrefix(reserved.data()).ok());
  HelloMessage back;
  EXPECT_FALSE(DecodeHello(good.data(), good.size() - 1, &back).ok());
}

TEST(HandshakeTest, ProofsDependOnEverythingTheyCover) {
  Nonce d = NewNonce(), a = NewNonce();
  Pid p = Pid::FromIpv4(0x7f000001, 1, 1), q = Pid::FromIpv4(0x7f000001, 2, 2);
  Mac dialer = DialerMac(kSecret, d, a, p, q);
  EXPECT_TRUE(MacEqual(dialer, DialerMac(kSecret, d, a, p, q)));
  EXPECT_FALSE(MacEqual(dialer, DialerMac(std::string(kSecretSize, 'j'), d, a, p, q)));
  EXPECT_FALSE(MacEqual(dialer, DialerMac(kSecret, a, d, p, q)));
  EXPECT_FALSE(MacEqual(dialer, DialerMac(kSecret, d, a, q, p)));
  EXPECT_FALSE(MacEqual(dialer, DialerMac(kSecret, NewNonce(), a, p, q)));
  // The labels: no proof of one step or role is a proof of another.
  EXPECT_FALSE(MacEqual(AcceptorMac(kSecret, d, a), DialerMac(kSecret, d, a, p, q)));
  EXPECT_FALSE(MacEqual(dialer, VerdictMac(kSecret, d, a, p, q, HelloKind::kAccept)));
  EXPECT_FALSE(MacEqual(VerdictMac(kSecret, d, a, p, q, HelloKind::kAccept),
                        VerdictMac(kSecret, d, a, p, q, HelloKind::kWrongPid)));
}

TEST(HandshakeTest, NoSecretMatchesNothing) {
  Nonce d = NewNonce(), a = NewNonce();
  EXPECT_FALSE(MacEqual(AcceptorMac("", d, a), AcceptorMac("", d, a)));
  EXPECT_FALSE(MacEqual(AcceptorMac("short", d, a), AcceptorMac("short", d, a)));
}

// The hand-made HMAC agrees with OpenSSL's.
TEST(HandshakeTest, HmacMatchesOpenSsl) {
  for (const std::string& data : {std::string(), std::string("Hi There"), std::string(1000, 'x')}) {
    for (const std::string& key : {kSecret, std::string(20, '\x0b'), std::string(64, 'q')}) {
      unsigned char want[32];
      unsigned int len = 0;
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), want, &len);
      ASSERT_EQ(len, 32u);
      Mac got = HmacSha256(key, data);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), 32),
                std::string(reinterpret_cast<char*>(want), 32));
    }
  }
}

TEST(HandshakeTest, SecretsAreFresh) {
  std::string a = NewDeploymentSecret(), b = NewDeploymentSecret();
  EXPECT_EQ(a.size(), kSecretSize);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace constellation::net
