#include "lib/process/output_format.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace constellation::internal {
namespace {

// no-color.org: NO_COLOR set and not empty turns colour off; an empty one
// does not; a stream that is not a terminal never gets colour.
TEST(ColorFor, NoColorAndTerminals) {
  EXPECT_TRUE(ColorFor(true, nullptr));
  EXPECT_TRUE(ColorFor(true, ""));
  EXPECT_FALSE(ColorFor(true, "1"));
  EXPECT_FALSE(ColorFor(true, "0"));  // any value: "0" is not "no"
  EXPECT_FALSE(ColorFor(false, nullptr));
  EXPECT_FALSE(ColorFor(false, ""));
}

TEST(ColorFor, UseColorOfAPipeIsOff) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_FALSE(UseColor(fds[1]));
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace constellation::internal
