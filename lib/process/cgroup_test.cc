// The cgroup code against text and plain directories: finding this process's
// cgroups in mountinfo, and what a leaf and a base write. (The real thing is
// tested end to end in tests/resources.)
#include "lib/process/cgroup.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace constellation::internal {
namespace {

// This machine kind: v1 controllers each mounted alone, a container's memory cgroup.
constexpr char kV1Mountinfo[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr char kV1Cgroup[] = "4:memory:/process_api/d7c6\n2:cpuacct:/\n1:cpu:/\n0::/\n";

TEST(CgroupLayoutTest, SeparateV1Controllers) {
  CgroupLayout layout = ParseCgroupLayout(kV1Mountinfo, kV1Cgroup);
  EXPECT_EQ(layout.v1_memory, "/sys/fs/cgroup/memory/process_api/d7c6");
  EXPECT_EQ(layout.v1_cpu, "/sys/fs/cgroup/cpu");
  EXPECT_EQ(layout.v2, "/sys/fs/cgroup/unified");
}

TEST(CgroupLayoutTest, CombinedCpuControllersAndAMountedSubtree) {
  // A container sees its own cgroup mounted as the hierarchy's root.
  constexpr char kMountinfo[] =
      "40 30 0:35 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
      "41 30 0:36 /docker/abc /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory\n";
  CgroupLayout layout = ParseCgroupLayout(kMountinfo, "5:cpu,cpuacct:/docker/abc/x\n3:memory:/docker/abc\n");
  EXPECT_EQ(layout.v1_cpu, "/sys/fs/cgroup/cpu,cpuacct/x");
  EXPECT_EQ(layout.v1_memory, "/sys/fs/cgroup/memory");
  EXPECT_EQ(layout.v2, "");
}

TEST(CgroupLayoutTest, UnifiedOnly) {
  constexpr char kMountinfo[] =
      "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
  CgroupLayout layout = ParseCgroupLayout(kMountinfo, "0::/system.slice/constellation.service\n");
  EXPECT_EQ(layout.v2, "/sys/fs/cgroup/system.slice/constellation.service");
  EXPECT_EQ(layout.v1_memory, "");
  EXPECT_EQ(layout.v1_cpu, "");
}

TEST(CgroupLayoutTest, NothingMounted) {
  CgroupLayout layout = ParseCgroupLayout("", kV1Cgroup);
  EXPECT_EQ(layout.v1_memory, "");
  EXPECT_EQ(layout.v2, "");
}

class CgroupFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cgroup_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::string text;
    std::getline(in, text);
    return text;
  }
  void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  std::string root_;
};

TEST_F(CgroupFilesTest, ModeOffMeansNoCgroupsAndNoComplaint) {
  CgroupSetup setup = CreateCgroupBase({root_, root_, ""}, "off");
  EXPECT_EQ(setup.base.version(), 0);
  EXPECT_TRUE(setup.why_not.ok());
}

TEST_F(CgroupFilesTest, UnknownModeIsInvalid) {
  CgroupSetup setup = CreateCgroupBase({root_, root_, ""}, "v3");
  EXPECT_TRUE(absl::IsInvalidArgument(setup.why_not)) << setup.why_not;
}

TEST_F(CgroupFilesTest, V1BaseAndLeafWriteTheLimits) {
  std::filesystem::create_directories(root_ + "/memory");
  std::filesystem::create_directories(root_ + "/cpu");
  CgroupSetup setup = CreateCgroupBase({root_ + "/memory", root_ + "/cpu", ""}, "v1");
  ASSERT_TRUE(setup.why_not.ok()) << setup.why_not;
  ASSERT_EQ(setup.base.version(), 1);
  EXPECT_EQ(setup.base.memory(), absl::StrCat(root_, "/memory/constellation-", getpid()));
  EXPECT_EQ(setup.base.cpu(), absl::StrCat(root_, "/cpu/constellation-", getpid()));
  absl::StatusOr<CgroupLeaf> leaf = CgroupLeaf::Create(setup.base, "p42", Resources{64 << 20, 0.25});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(leaf->memory_dir(), setup.base.memory() + "/p42");
  if (!CgroupLimitsApplied()) GTEST_SKIP() << "a sanitizer build sets no limits";
  EXPECT_EQ(Read(leaf->memory_dir() + "/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(Read(leaf->cpu_dir() + "/cpu.cfs_period_us"), absl::StrCat(kCpuPeriodUs));
  EXPECT_EQ(Read(leaf->cpu_dir() + "/cpu.cfs_quota_us"), absl::StrCat(kCpuPeriodUs / 4));
  EXPECT_FALSE(leaf->OomKilled());
  Write(leaf->memory_dir() + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  EXPECT_TRUE(leaf->OomKilled());
}

TEST_F(CgroupFilesTest, TinyCpuStillGetsAMillisecondPerPeriod) {
  std::filesystem::create_directories(root_ + "/m");
  std::filesystem::create_directories(root_ + "/c");
  CgroupSetup setup = CreateCgroupBase({root_ + "/m", root_ + "/c", ""}, "v1");
  absl::StatusOr<CgroupLeaf> leaf = CgroupLeaf::Create(setup.base, "p1", Resources{1 << 20, 1e-6});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  if (!CgroupLimitsApplied()) GTEST_SKIP() << "a sanitizer build sets no limits";
  EXPECT_EQ(Read(leaf->cpu_dir() + "/cpu.cfs_quota_us"), "1000");
}

TEST_F(CgroupFilesTest, V2NeedsTheControllersAndTurnsThemOn) {
  std::string own = root_ + "/service";
  std::filesystem::create_directories(own);
  Write(own + "/cgroup.controllers", "cpuset io hugetlb\n");
  CgroupSetup without = CreateCgroupBase({"", "", own}, "v2");
  EXPECT_EQ(without.base.version(), 0);
  EXPECT_NE(without.why_not.message().find("lacks the memory and cpu controllers"), std::string::npos)
      << without.why_not;
  Write(own + "/cgroup.controllers", "cpuset cpu io memory pids\n");
  CgroupSetup setup = CreateCgroupBase({"", "", own}, "auto");
  ASSERT_TRUE(setup.why_not.ok()) << setup.why_not;
  ASSERT_EQ(setup.base.version(), 2);
  std::string base = absl::StrCat(own, "/constellation-", getpid());
  EXPECT_EQ(setup.base.memory(), base);
  EXPECT_EQ(setup.base.cpu(), base);
  // The launcher moved into <base>/supervisor, then enabled both controllers below.
  EXPECT_EQ(Read(base + "/supervisor/cgroup.procs"), absl::StrCat(getpid()));
  EXPECT_EQ(Read(own + "/cgroup.subtree_control"), "+memory +cpu");
  EXPECT_EQ(Read(base + "/cgroup.subtree_control"), "+memory +cpu");
  absl::StatusOr<CgroupLeaf> leaf = CgroupLeaf::Create(setup.base, "p7", Resources{128 << 20, 1.5});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  if (!CgroupLimitsApplied()) GTEST_SKIP() << "a sanitizer build sets no limits";
  EXPECT_EQ(Read(base + "/p7/memory.max"), "134217728");
  EXPECT_EQ(Read(base + "/p7/cpu.max"), absl::StrCat(kCpuPeriodUs * 3 / 2, " ", kCpuPeriodUs));
  Write(base + "/p7/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
  EXPECT_TRUE(leaf->OomKilled());
}

TEST_F(CgroupFilesTest, NoLeafWithoutABase) {
  absl::StatusOr<CgroupLeaf> leaf = CgroupLeaf::Create(pb::CgroupBase(), "p1", Resources());
  ASSERT_TRUE(leaf.ok());
  EXPECT_FALSE(leaf->enabled());
  EXPECT_FALSE(leaf->OomKilled());
}

}  // namespace
}  // namespace constellation::internal
