#include "cli/env_filter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace constellation::cli {
namespace {

using ::testing::ElementsAre;

TEST(EnvFilter, OnlyTheAllowListByDefault) {
  const char* entries[] = {"PATH=/bin",        "HOME=/root",
                           "LANG=C.UTF-8",     "LC_ALL=C",
                           "TZ=UTC",           "AWS_SECRET=s3cr",
                           "SSH_AUTH_SOCK=/x", "CONSTELLATION_FORMAT=json",
                           "MY_VAR=1",         nullptr};
  char** environ = const_cast<char**>(entries);
  EXPECT_THAT(ForwardedEnvironment(environ, {}),
              ElementsAre("PATH=/bin", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC", "CONSTELLATION_FORMAT=json"));
  EXPECT_THAT(ForwardedEnvironment(environ, {.names = {"MY_VAR"}}),
              ElementsAre("PATH=/bin", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC", "CONSTELLATION_FORMAT=json", "MY_VAR=1"));
  EXPECT_EQ(ForwardedEnvironment(environ, {.all = true}).size(), 9u);
}

TEST(EnvFilter, NamesMatchWhole) {
  EXPECT_FALSE(IsForwarded("PATHX", {}));
  EXPECT_FALSE(IsForwarded("MY_VAR_2", {.names = {"MY_VAR"}}));
  EXPECT_FALSE(IsForwarded("LC", {}));
  EXPECT_FALSE(IsForwarded("CONSTELLATION", {}));
}

TEST(EnvFilter, EnvNamesAreChecked) {
  EXPECT_TRUE(ValidateEnvName("MY_VAR2").ok());
  EXPECT_FALSE(ValidateEnvName("").ok());
  EXPECT_FALSE(ValidateEnvName("2X").ok());
  EXPECT_FALSE(ValidateEnvName("A=B").ok());
}

}  // namespace
}  // namespace constellation::cli
