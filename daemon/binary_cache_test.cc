#include "daemon/binary_cache.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

// SHA-256 of "hello\n".
constexpr char kHelloSha[] = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

class BinaryCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/binary_cache_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    auto cache = BinaryCache::Create(dir_ + "/cache");
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
  }
  void TearDown() override { system(("rm -rf " + dir_).c_str()); }

  pb::BinaryId Id(const std::string& sha, uint64_t size) {
    pb::BinaryId id;
    id.set_sha256(sha);
    id.set_size(size);
    return id;
  }

  std::string dir_;
  std::unique_ptr<BinaryCache> cache_;
};

TEST_F(BinaryCacheTest, GoodUploadIsStoredExecutable) {
  pb::BinaryId id = Id(kHelloSha, 6);
  EXPECT_FALSE(cache_->Has(id));
  auto upload = cache_->Begin(id);
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_TRUE((*upload)->Append("hel").ok());
  ASSERT_TRUE((*upload)->Append("lo\n").ok());
  ASSERT_TRUE((*upload)->Finish().ok());
  EXPECT_TRUE(cache_->Has(id));
  struct stat st;
  ASSERT_EQ(stat(cache_->PathOf(id).c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  auto sha = Sha256OfFile(cache_->PathOf(id));
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, kHelloSha);
}

TEST_F(BinaryCacheTest, TruncatedUploadIsRejected) {
  pb::BinaryId id = Id(kHelloSha, 6);
  auto upload = cache_->Begin(id);
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Append("hel").ok());
  absl::Status status = (*upload)->Finish();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("truncated"), std::string::npos) << status;
  EXPECT_FALSE(cache_->Has(id));
}

TEST_F(BinaryCacheTest, CorruptedUploadIsRejectedAndNeverStored) {
  pb::BinaryId id = Id(kHelloSha, 6);
  auto upload = cache_->Begin(id);
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Append("jello\n").ok());
  absl::Status status = (*upload)->Finish();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("corrupted"), std::string::npos) << status;
  EXPECT_FALSE(cache_->Has(id));
  upload->reset();  // the temporary file goes too
  EXPECT_EQ(system(("test -z \"$(ls -A " + dir_ + "/cache)\"").c_str()), 0);
}

TEST_F(BinaryCacheTest, OverlongUploadAndBadIdsAreRejected) {
  auto upload = cache_->Begin(Id(kHelloSha, 2));
  ASSERT_TRUE(upload.ok());
  EXPECT_FALSE((*upload)->Append("hello\n").ok());
  EXPECT_FALSE(cache_->Begin(Id("../../etc/passwd", 1)).ok());
  EXPECT_FALSE(cache_->Begin(Id(std::string(64, 'G'), 1)).ok());
  EXPECT_FALSE(cache_->Has(Id("../x", 1)));
}

TEST_F(BinaryCacheTest, AddFile) {
  std::string path = dir_ + "/hello.txt";
  std::ofstream(path) << "hello\n";
  ASSERT_TRUE(cache_->AddFile(Id(kHelloSha, 6), path).ok());
  EXPECT_TRUE(cache_->Has(Id(kHelloSha, 6)));
  EXPECT_FALSE(cache_->AddFile(Id(std::string(64, 'a'), 6), path).ok());
}

}  // namespace
}  // namespace constellation::daemon
