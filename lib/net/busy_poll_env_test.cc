// CONSTELLATION_BUSY_POLL_US (set to 25 by the BUILD rule) is read at the
// first use; set_busy_poll overrides it.
#include <gtest/gtest.h>

#include "lib/net/busy_poll.h"

namespace constellation {
namespace {

TEST(BusyPollEnvTest, EnvironmentSetsItAndCodeOverrides) {
  EXPECT_EQ(busy_poll(), absl::Microseconds(25));
  EXPECT_EQ(net::BusyPollNs(), 25'000);
  set_busy_poll(absl::ZeroDuration());
  EXPECT_EQ(busy_poll(), absl::ZeroDuration());
}

}  // namespace
}  // namespace constellation
