#include "lib/core/pid.h"

#include <set>
#include <unordered_set>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"
#include "lib/core/codec.h"

namespace constellation {
namespace {

TEST(PidTest, DefaultIsNull) {
  EXPECT_TRUE(Pid().is_null());
  EXPECT_FALSE(Pid::FromIpv4(0x7f000001, 1, 0).is_null());
}

TEST(PidTest, ToStringIsSevenHexCharacters) {
  for (uint16_t port = 1; port < 200; ++port) {
    std::string s = Pid::FromIpv4(0x7f000001, port, 42).to_string();
    ASSERT_EQ(s.size(), 7u) << s;
    EXPECT_EQ(s.find_first_not_of("0123456789abcdef"), std::string::npos) << s;
  }
}

TEST(PidTest, ToStringDiffersForNeighbouringPids) {
  std::set<std::string> seen;
  for (uint16_t port = 1000; port < 2000; ++port) seen.insert(Pid::FromIpv4(0x7f000001, port, 7).to_string());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(PidTest, ToStringIsStable) {
  // Every process must print the same name for a Pid: no per-process hash seed.
  Pid pid = Pid::FromIpv4(0x0a000001, 8888, 0xdeadbeef);
  EXPECT_EQ(pid.to_string(), Pid::FromIpv4(0x0a000001, 8888, 0xdeadbeef).to_string());
}

TEST(PidTest, FullStringRoundTripsIpv4) {
  Pid pid = Pid::FromIpv4(0x7f000001, 40123, 0x9f3a01bc);
  EXPECT_EQ(pid.to_full_string(), "127.0.0.1:40123/9f3a01bc");
  EXPECT_EQ(pid.ip_string(), "127.0.0.1");
  auto parsed = Pid::Parse(pid.to_full_string());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, pid);
}

TEST(PidTest, FullStringRoundTripsIpv6) {
  Pid::Address addr{};
  addr[15] = 1;  // ::1
  Pid pid(addr, 9, 3);
  EXPECT_EQ(pid.to_full_string(), "[::1]:9/00000003");
  EXPECT_FALSE(pid.is_ipv4());
  auto parsed = Pid::Parse(pid.to_full_string());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, pid);
}

TEST(PidTest, ParseRejectsGarbage) {
  for (const char* bad : {"", "abc", "1.2.3.4:5", "1.2.3.4/5", "1.2.3.4:70000/1", "1.2.3:5/1", "1.2.3.4:5/xyz",
                          "1.2.3.4:5/123456789", "[::1:5/1", "[zz]:5/1", "1.2.3.4:-5/1"}) {
    auto parsed = Pid::Parse(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("bad pid"), std::string::npos);
    }
  }
}

TEST(PidTest, OrderingAndEquality) {
  Pid a = Pid::FromIpv4(0x7f000001, 1, 1);
  Pid b = Pid::FromIpv4(0x7f000001, 2, 1);
  Pid c = Pid::FromIpv4(0x7f000001, 2, 2);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_FALSE(b < a);
  EXPECT_NE(b, c);  // same port, different nonce: another process
  EXPECT_EQ(a, Pid::FromIpv4(0x7f000001, 1, 1));
}

TEST(PidTest, HashesInStdAndAbslSets) {
  std::unordered_set<Pid> std_set;
  absl::flat_hash_set<Pid> absl_set;
  for (uint16_t port = 0; port < 100; ++port) {
    std_set.insert(Pid::FromIpv4(0x7f000001, port, 5));
    absl_set.insert(Pid::FromIpv4(0x7f000001, port, 5));
  }
  std_set.insert(Pid::FromIpv4(0x7f000001, 3, 5));
  EXPECT_EQ(std_set.size(), 100u);
  EXPECT_EQ(absl_set.size(), 100u);
  EXPECT_TRUE(absl_set.contains(Pid::FromIpv4(0x7f000001, 42, 5)));
}

TEST(PidTest, CodecRoundTrip) {
  Pid pid = Pid::FromIpv4(0xc0a80001, 65535, 0xffffffff);
  auto decoded = decode<Pid>(encode(pid));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, pid);
}

}  // namespace
}  // namespace constellation
