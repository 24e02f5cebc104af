// Capacity detection over fake /proc and /sys/fs/cgroup trees.
#include "daemon/capacity.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

class CapacityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        std::string(getenv("TEST_TMPDIR")) + "/root-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    Write("proc/meminfo", "MemTotal:       16384000 kB\nMemFree:         1000 kB\n");
  }
  void Write(const std::string& path, const std::string& text) {
    std::filesystem::path file = std::filesystem::path(root_) / path;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  Resources Detect(int affinity) {
    absl::StatusOr<Resources> capacity = DetectCapacity(root_, affinity);
    EXPECT_TRUE(capacity.ok()) << capacity.status();
    return capacity.value_or(Resources{0, 0});
  }
  std::string root_;
};

constexpr uint64_t kMemTotal = 16384000ull * 1024;

TEST_F(CapacityTest, NoCgroupLimitIsTheMachine) {
  Write("proc/self/cgroup", "0::/system.slice/constellation.service\n");
  Write("sys/fs/cgroup/system.slice/constellation.service/memory.max", "max\n");
  Write("sys/fs/cgroup/system.slice/constellation.service/cpu.max", "max 100000\n");
  Resources capacity = Detect(8);
  EXPECT_EQ(capacity.mem, kMemTotal);
  EXPECT_EQ(capacity.cpu, 8);
}

TEST_F(CapacityTest, CgroupV2TakesTheSmallestLimitOfItsCgroupAndAncestors) {
  Write("proc/self/cgroup", "0::/slurm/job_7/step_0\n");
  Write("sys/fs/cgroup/slurm/memory.max", "8589934592\n");        // 8 GiB
  Write("sys/fs/cgroup/slurm/job_7/memory.max", "4294967296\n");  // 4 GiB: the job's
  Write("sys/fs/cgroup/slurm/job_7/step_0/memory.max", "max\n");  // the step: unlimited
  Write("sys/fs/cgroup/slurm/job_7/cpu.max", "250000 100000\n");  // 2.5 cores
  Write("sys/fs/cgroup/slurm/job_7/step_0/cpu.max", "max 100000\n");
  Resources capacity = Detect(16);
  EXPECT_EQ(capacity.mem, 4ull << 30);
  EXPECT_EQ(capacity.cpu, 2) << "the quota rounded down";
}

TEST_F(CapacityTest, AffinityBelowTheQuotaWins) {
  Write("proc/self/cgroup", "0::/k\n");
  Write("sys/fs/cgroup/k/cpu.max", "800000 100000\n");
  EXPECT_EQ(Detect(3).cpu, 3);
}

TEST_F(CapacityTest, ASmallQuotaIsStillOneCore) {
  Write("proc/self/cgroup", "0::/k\n");
  Write("sys/fs/cgroup/k/cpu.max", "50000 100000\n");
  EXPECT_EQ(Detect(4).cpu, 1);
}

TEST_F(CapacityTest, AContainersNamespacedCgroupIsReadAtTheMountRoot) {
  Write("proc/self/cgroup", "0::/\n");
  Write("sys/fs/cgroup/memory.max", "536870912\n");
  Write("sys/fs/cgroup/cpu.max", "200000 100000\n");
  Resources capacity = Detect(32);
  EXPECT_EQ(capacity.mem, 512ull << 20);
  EXPECT_EQ(capacity.cpu, 2);
}

TEST_F(CapacityTest, CgroupV1LimitsAndTheirUnlimitedValue) {
  Write("proc/self/cgroup", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n");
  Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");  // the root: no limit
  Write("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "2147483648\n");
  Write("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
  Write("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  Write("sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us", "-1\n");
  Write("sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
  Resources capacity = Detect(8);
  EXPECT_EQ(capacity.mem, 2ull << 30);
  EXPECT_EQ(capacity.cpu, 3);
}

TEST_F(CapacityTest, ALimitAboveTheMachineIsTheMachine) {
  Write("proc/self/cgroup", "0::/k\n");
  Write("sys/fs/cgroup/k/memory.max", "1099511627776\n");  // 1 TiB
  EXPECT_EQ(Detect(1).mem, kMemTotal);
}

TEST_F(CapacityTest, GarbageIsNoLimitAndNoMeminfoIsAnError) {
  Write("proc/self/cgroup", "garbage\n0::/k\n");
  Write("sys/fs/cgroup/k/memory.max", "lots\n");
  Write("sys/fs/cgroup/k/cpu.max", "1 0\n");
  Resources capacity = Detect(0);
  EXPECT_EQ(capacity.mem, kMemTotal);
  EXPECT_EQ(capacity.cpu, 1) << "no affinity count is still one core";
  std::filesystem::remove(std::filesystem::path(root_) / "proc/meminfo");
  EXPECT_FALSE(DetectCapacity(root_, 1).ok());
}

TEST(CapacityOfThisMachineTest, IsPositive) {
  absl::StatusOr<Resources> capacity = DetectCapacity("/", AffinityCpus());
  ASSERT_TRUE(capacity.ok()) << capacity.status();
  EXPECT_GT(capacity->mem, 0u);
  EXPECT_GE(capacity->cpu, 1);
}

}  // namespace
}  // namespace constellation::daemon
