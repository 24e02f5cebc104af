// HashCache on real files in the test's temporary directory, with the clock,
// the hasher and the filesystem check injected: an unchanged file is not
// hashed again, a changed one is, and nothing is remembered that could hide a
// change (racily clean, whole-second times, not a local filesystem, changed
// while hashed); a damaged entry is ignored.
#include "cli/hash_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "daemon/binary_cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace constellation::cli {
namespace {

class HashCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/hash_cache_", ::testing::UnitTest::GetInstance()->random_seed(),
                         "_", counter_++);
    ASSERT_EQ(mkdir(root_.c_str(), 0700), 0);
    file_ = root_ + "/binary";
    Write("#!/bin/true\nfirst version\n");
  }

  void Write(const std::string& text) { std::ofstream(file_, std::ios::trunc) << text; }
  // Sets the file's mtime (its ctime becomes now: no user can set that).
  void SetMtime(int64_t seconds, int64_t nanos) {
    timespec times[2] = {{seconds, nanos}, {seconds, nanos}};
    ASSERT_EQ(utimensat(AT_FDCWD, file_.c_str(), times, 0), 0);
  }

  HashCache Make() {
    HashCache::Options options;
    options.dir = root_ + "/cache";
    mkdir(options.dir.c_str(), 0700);
    options.hasher = [this](int fd, const std::string& path) {
      ++hashed_;
      if (during_hash_) during_hash_();
      return daemon::Sha256OfFd(fd, path);
    };
    options.now = [this] { return now_; };
    options.local_file = [this](int) { return local_; };
    return HashCache(options);
  }

  static inline int counter_ = 0;
  std::string root_, file_;
  int hashed_ = 0;
  absl::Time now_ = absl::Now() + absl::Hours(1);  // the file's times are well in the past
  bool local_ = true;
  std::function<void()> during_hash_;
};

TEST_F(HashCacheTest, AnUnchangedFileIsHashedOnce) {
  HashCache cache = Make();
  absl::StatusOr<std::string> first = cache.Sha256(file_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, *daemon::Sha256OfFile(file_));
  absl::StatusOr<std::string> again = Make().Sha256(file_);  // another cdeploy: read from the directory
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(hashed_, 1);
}

TEST_F(HashCacheTest, AChangedFileIsHashedAgain) {
  HashCache cache = Make();
  std::string first = *cache.Sha256(file_);
  Write("#!/bin/true\nother version\n");  // the same size
  SetMtime(1700000000, 123456789);
  absl::StatusOr<std::string> second = cache.Sha256(file_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*second, first);
  EXPECT_EQ(*second, *daemon::Sha256OfFile(file_));
  EXPECT_EQ(hashed_, 2);
  Write("#!/bin/true\nfirst version, longer\n");  // another size
  EXPECT_EQ(*cache.Sha256(file_), *daemon::Sha256OfFile(file_));
  EXPECT_EQ(hashed_, 3);
}

TEST_F(HashCacheTest, AFileChangedJustBeforeItWasHashedIsNotRemembered) {
  now_ = absl::Now();  // the file was written within kRacyMargin of this
  HashCache cache = Make();
  ASSERT_TRUE(cache.Sha256(file_).ok());
  ASSERT_TRUE(cache.Sha256(file_).ok());
  EXPECT_EQ(hashed_, 2);
}

TEST_F(HashCacheTest, WholeSecondTimesAreNotTrusted) {
  SetMtime(1700000000, 0);
  struct stat st;
  ASSERT_EQ(stat(file_.c_str(), &st), 0);
  if (st.st_ctim.tv_nsec != 0) GTEST_SKIP() << "this filesystem keeps nanoseconds in ctime";
  HashCache cache = Make();
  ASSERT_TRUE(cache.Sha256(file_).ok());
  ASSERT_TRUE(cache.Sha256(file_).ok());
  EXPECT_EQ(hashed_, 2);
}

TEST_F(HashCacheTest, OnlyLocalFilesystemsAreTrusted) {
  local_ = false;
  HashCache cache = Make();
  ASSERT_TRUE(cache.Sha256(file_).ok());
  ASSERT_TRUE(cache.Sha256(file_).ok());
  EXPECT_EQ(hashed_, 2);
}

TEST_F(HashCacheTest, AFileChangedWhileHashedIsNotRemembered) {
  during_hash_ = [this] {
    during_hash_ = nullptr;
    std::ofstream(file_, std::ios::app) << "appended while hashed\n";
  };
  HashCache cache = Make();
  ASSERT_TRUE(cache.Sha256(file_).ok());
  EXPECT_EQ(*cache.Sha256(file_), *daemon::Sha256OfFile(file_));
  EXPECT_EQ(hashed_, 2);
}

TEST_F(HashCacheTest, ADamagedEntryIsIgnoredAndRewritten) {
  HashCache cache = Make();
  const std::string good = *cache.Sha256(file_);
  struct stat st;
  ASSERT_EQ(stat(file_.c_str(), &st), 0);
  const std::string entry = absl::StrFormat("%s/cache/%x-%x", root_, st.st_dev, st.st_ino);
  std::string text;
  std::getline(std::ifstream(entry), text, '\0');
  ASSERT_NE(text.find(good), std::string::npos) << text;
  for (const std::string& bad :
       std::vector<std::string>{std::string("garbage"), text.substr(0, text.size() - 10), absl::StrCat(text, "extra\n"),
                                std::string(4096, 'x'), absl::StrReplaceAll(text, {{good, std::string(64, 'G')}})}) {
    std::ofstream(entry, std::ios::trunc) << bad;
    absl::StatusOr<std::string> got = cache.Sha256(file_);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, good) << "with entry " << bad.substr(0, 80);
  }
  EXPECT_EQ(hashed_, 6);
  EXPECT_EQ(*cache.Sha256(file_), good);  // rewritten by the last one
  EXPECT_EQ(hashed_, 6);
}

TEST_F(HashCacheTest, AFifoInPlaceOfAnEntryIsIgnored) {
  struct stat st;
  ASSERT_EQ(stat(file_.c_str(), &st), 0);
  HashCache cache = Make();
  const std::string entry = absl::StrFormat("%s/cache/%x-%x", root_, st.st_dev, st.st_ino);
  ASSERT_EQ(mkfifo(entry.c_str(), 0600), 0);
  absl::StatusOr<std::string> got = cache.Sha256(file_);  // would block on a FIFO opened for reading
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *daemon::Sha256OfFile(file_));
}

TEST_F(HashCacheTest, ASymlinkInPlaceOfAnEntryIsNotFollowed) {
  HashCache cache = Make();
  const std::string good = *cache.Sha256(file_);
  struct stat st;
  ASSERT_EQ(stat(file_.c_str(), &st), 0);
  const std::string entry = absl::StrFormat("%s/cache/%x-%x", root_, st.st_dev, st.st_ino);
  // Someone else's entry, saying another hash for this very file.
  const std::string planted = root_ + "/planted";
  std::ifstream in(entry);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(planted) << absl::StrReplaceAll(text, {{good, std::string(64, 'a')}});
  ASSERT_EQ(unlink(entry.c_str()), 0);
  ASSERT_EQ(symlink(planted.c_str(), entry.c_str()), 0);
  absl::StatusOr<std::string> got = cache.Sha256(file_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, good);
  EXPECT_EQ(hashed_, 2);
}

TEST_F(HashCacheTest, AMissingFileIsNotFound) {
  absl::StatusOr<std::string> got = Make().Sha256(root_ + "/absent");
  EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
}

TEST(HashCacheDefault, OffMeansNoCache) {
  setenv(kHashCacheEnv, "off", 1);
  EXPECT_FALSE(HashCache::Default().has_value());
  unsetenv(kHashCacheEnv);
}

TEST(HashCacheDefault, ASettingOtherThanOnOrOffIsAnError) {
  const std::string file = absl::StrCat(std::getenv("TEST_TMPDIR"), "/setting_binary");
  std::ofstream(file) << "bytes";
  setenv(kHashCacheEnv, "yes", 1);
  absl::StatusOr<std::string> refused = CachedSha256OfFile(file);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("expected on or off"));
  for (const char* fine : {"on", "off"}) {
    setenv(kHashCacheEnv, fine, 1);
    absl::StatusOr<std::string> sha = CachedSha256OfFile(file);
    ASSERT_TRUE(sha.ok()) << fine << ": " << sha.status();
    EXPECT_EQ(*sha, *daemon::Sha256OfFile(file));
  }
  unsetenv(kHashCacheEnv);
}

TEST(HashCacheDefault, ADirectoryOthersCanWriteIsNotUsed) {
  const std::string home = absl::StrCat(std::getenv("TEST_TMPDIR"), "/shared_home");
  ASSERT_EQ(mkdir(home.c_str(), 0700), 0);
  setenv("XDG_CACHE_HOME", home.c_str(), 1);
  EXPECT_TRUE(HashCache::Default().has_value());
  ASSERT_EQ(chmod((home + "/constellation/sha256").c_str(), 0777), 0);
  EXPECT_FALSE(HashCache::Default().has_value());
  // A parent others may write (and so swap the directory in) is refused too.
  ASSERT_EQ(chmod((home + "/constellation/sha256").c_str(), 0700), 0);
  ASSERT_EQ(chmod((home + "/constellation").c_str(), 0777), 0);
  EXPECT_FALSE(HashCache::Default().has_value());
  unsetenv("XDG_CACHE_HOME");
}

}  // namespace
}  // namespace constellation::cli
