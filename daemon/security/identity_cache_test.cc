#include "daemon/security/identity_cache.h"

#include <string>

#include "gtest/gtest.h"

namespace constellation::daemon::security {
namespace {

// A parse that names the certificate after its bytes and counts its calls.
struct CountingParse {
  int* calls;
  absl::StatusOr<Identity> operator()(const std::string& pem) const {
    ++*calls;
    if (pem == "bad") return absl::UnauthenticatedError("not a certificate");
    return Identity{Role::kNode, pem};
  }
};

TEST(IdentityCache, AKnownCertificateIsNotParsedAgain) {
  int calls = 0;
  IdentityCache cache(CountingParse{&calls});
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Identity> got = cache.Get("n1");
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, (Identity{Role::kNode, "n1"}));
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(cache.Get("n2")->name, "n2") << "each certificate has its own";
  EXPECT_EQ(calls, 2);
}

TEST(IdentityCache, ACertificateWithoutAnIdentityStaysRefused) {
  int calls = 0;
  IdentityCache cache(CountingParse{&calls});
  EXPECT_TRUE(absl::IsUnauthenticated(cache.Get("bad").status()));
  EXPECT_TRUE(absl::IsUnauthenticated(cache.Get("bad").status()));
  EXPECT_EQ(calls, 1);
}

TEST(IdentityCache, PastItsBoundItStartsOver) {
  int calls = 0;
  IdentityCache cache(CountingParse{&calls}, /*max_entries=*/4);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(cache.Get(std::to_string(i))->name, std::to_string(i));
    EXPECT_LE(cache.size(), 4u);
  }
  EXPECT_EQ(calls, 100);
  EXPECT_EQ(cache.Get("99")->name, "99");
  EXPECT_EQ(calls, 100) << "the newest is kept";
}

}  // namespace
}  // namespace constellation::daemon::security
