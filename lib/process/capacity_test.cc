#include "lib/process/capacity.h"

#include <sched.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace constellation::internal {
namespace {

TEST(CapacityTest, ParsesMemoryAndCores) {
  absl::StatusOr<Resources> c = ParseCapacity("8 GiB,4");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mem, 8 * kGiB);
  EXPECT_EQ(c->cpu, 4);
  c = ParseCapacity(" 512 MiB , 0.5 ");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mem, 512 * kMiB);
  EXPECT_EQ(c->cpu, 0.5);
}

TEST(CapacityTest, BadTextNamesTheVariableAndTheProblem) {
  for (const char* bad : {"", "8 GiB", "8 GiB,4,2", "8 GB,4", "8 GiB,0", "8 GiB,-1", "0 B,1", "x,y"}) {
    absl::StatusOr<Resources> c = ParseCapacity(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << bad;
    EXPECT_NE(c.status().message().find("CONSTELLATION_CAPACITY=\""), std::string::npos) << c.status();
  }
  EXPECT_NE(ParseCapacity("8 GB,4").status().message().find("GiB"), std::string::npos);
}

TEST(CapacityTest, MachineIsItsMemoryAndTheCpusWeMayUse) {
  Resources machine = MachineCapacity();
  uint64_t physical = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  EXPECT_GT(machine.mem, 0u);
  EXPECT_LE(machine.mem, physical);
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(machine.cpu, CPU_COUNT(&set));
}

TEST(CapacityTest, EnvironmentOverridesTheMachine) {
  absl::StatusOr<Resources> set = LocalCapacity("1 GiB,1");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->mem, kGiB);
  absl::StatusOr<Resources> unset = LocalCapacity(nullptr);
  ASSERT_TRUE(unset.ok());
  EXPECT_EQ(*unset, MachineCapacity());
  EXPECT_EQ(*LocalCapacity(""), MachineCapacity());
}

}  // namespace
}  // namespace constellation::internal
