#include "lib/process/private_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace constellation::internal {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// The OS pid of a process that has exited and been reaped.
pid_t GonePid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

TEST(MakePrivateTempDir, IsFreshAndPrivate) {
  unsetenv("XDG_RUNTIME_DIR");
  absl::StatusOr<std::string> dir = MakePrivateTempDir("test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(dir->rfind(absl::StrCat("/tmp/constellation-", geteuid(), "-test-", getpid(), "-"), 0), 0u) << *dir;
  struct stat st;
  ASSERT_EQ(lstat(dir->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(CheckPrivateDir(*dir).ok());
  rmdir(dir->c_str());
}

TEST(MakePrivateTempDir, SweepsOnlyItsOwnDirectoriesOfGoneProcesses) {
  unsetenv("XDG_RUNTIME_DIR");
  std::string prefix = absl::StrCat("/tmp/constellation-", geteuid(), "-sweep-");
  std::string gone = absl::StrCat(prefix, GonePid(), "-aaaaaa");
  std::string alive = absl::StrCat(prefix, getppid(), "-bbbbbb");
  std::string foreign = absl::StrCat(prefix, GonePid(), "-cccccc");
  for (const std::string& d : {gone, alive, foreign}) ASSERT_EQ(mkdir(d.c_str(), 0700), 0) << d;
  std::ofstream(gone + "/sock") << "";
  ASSERT_EQ(chown(foreign.c_str(), 65534, 65534), 0);
  absl::StatusOr<std::string> dir = MakePrivateTempDir("sweep");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_FALSE(Exists(gone));
  EXPECT_TRUE(Exists(alive));
  EXPECT_TRUE(Exists(foreign));
  for (const std::string& d : {alive, foreign, *dir}) rmdir(d.c_str());
}

TEST(EnsurePrivateDir, RefusesWhatOthersControl) {
  char base[] = "/tmp/private_dir_test.XXXXXX";
  ASSERT_NE(mkdtemp(base), nullptr);
  std::string mine = std::string(base) + "/a/b";
  EXPECT_TRUE(EnsurePrivateDir(mine).ok());
  std::string open = std::string(base) + "/open";
  ASSERT_EQ(mkdir(open.c_str(), 0777), 0);
  chmod(open.c_str(), 0777);
  EXPECT_EQ(EnsurePrivateDir(open).code(), absl::StatusCode::kFailedPrecondition);
  std::string link = std::string(base) + "/link";
  ASSERT_EQ(symlink(mine.c_str(), link.c_str()), 0);
  EXPECT_EQ(EnsurePrivateDir(link).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(system(absl::StrCat("rm -rf ", base).c_str()), 0);
}

}  // namespace
}  // namespace constellation::internal
