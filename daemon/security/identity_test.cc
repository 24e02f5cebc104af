#include "daemon/security/identity.h"

#include "gtest/gtest.h"

namespace constellation::daemon::security {
namespace {

TEST(IdentityTest, SpiffeUriRoundTrips) {
  for (Role role : {Role::kMaster, Role::kNode, Role::kClient, Role::kAdmin}) {
    Identity identity{role, "n-1.a_b"};
    absl::StatusOr<Identity> back = ParseSpiffeUri(SpiffeUri(identity));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, identity);
  }
  EXPECT_EQ(SpiffeUri({Role::kNode, "n1"}), "spiffe://constellation/node/n1");
}

TEST(IdentityTest, ForeignOrMalformedUrisAreRejected) {
  for (const char* uri : {"spiffe://other/node/n1", "spiffe://constellation/root/n1", "spiffe://constellation/node",
                          "spiffe://constellation/node/n1/x", "spiffe://constellation/node/", "https://x/node/n1",
                          "spiffe://constellation/node/a b", "spiffe://constellation/node/.."}) {
    EXPECT_FALSE(ParseSpiffeUri(uri).ok()) << uri;
  }
}

TEST(IdentityTest, NamesAreBoundedAndPlain) {
  EXPECT_TRUE(ValidateName("alice").ok());
  EXPECT_TRUE(ValidateName(std::string(64, 'a')).ok());
  EXPECT_FALSE(ValidateName(std::string(65, 'a')).ok());
  for (const char* bad : {"", ".", "..", "a/b", "a,b", "a;b", "a b", "a\nb"}) {
    EXPECT_FALSE(ValidateName(bad).ok()) << bad;
  }
}

TEST(IdentityTest, RolesParse) {
  EXPECT_EQ(*ParseRole("admin"), Role::kAdmin);
  EXPECT_FALSE(ParseRole("root").ok());
}

}  // namespace
}  // namespace constellation::daemon::security
