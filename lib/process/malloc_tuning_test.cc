#include "lib/process/malloc_tuning.h"

#include <gtest/gtest.h>

namespace constellation::process_internal {
namespace {

TEST(MallocTuningTest, AProgramsOwnThresholdsAreKept) {
  EXPECT_FALSE(EnvironmentSetsMallocThresholds(nullptr, nullptr, nullptr));
  EXPECT_TRUE(EnvironmentSetsMallocThresholds(nullptr, "1048576", nullptr));
  EXPECT_TRUE(EnvironmentSetsMallocThresholds(nullptr, nullptr, "131072"));
  EXPECT_TRUE(EnvironmentSetsMallocThresholds("glibc.malloc.trim_threshold=0", nullptr, nullptr));
  EXPECT_TRUE(
      EnvironmentSetsMallocThresholds("glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=65536", nullptr, nullptr));
  // Other tunables, or names that only contain the threshold's, are not a setting of it.
  EXPECT_FALSE(
      EnvironmentSetsMallocThresholds("glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0", nullptr, nullptr));
  EXPECT_FALSE(EnvironmentSetsMallocThresholds("x.glibc.malloc.trim_threshold=1", nullptr, nullptr));
  EXPECT_FALSE(EnvironmentSetsMallocThresholds("", nullptr, nullptr));
}

}  // namespace
}  // namespace constellation::process_internal
