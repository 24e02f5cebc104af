#include "daemon/binary_cache.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>

#include <filesystem>
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

  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << bytes;
    return path;
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
  EXPECT_EQ(st.st_mode & 0222, 0u) << "cached binaries are read-only";
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

// A file put in the cache under a binary's name by anyone but an upload is
// neither reported present nor handed out to be run.
TEST_F(BinaryCacheTest, PlantedFileIsNotPresentAndNeverRun) {
  pb::BinaryId id = Id(kHelloSha, 6);
  std::string planted = cache_->PathOf(id);
  std::ofstream(planted) << "evil!\n";  // same size, other bytes
  chmod(planted.c_str(), 0500);
  absl::StatusOr<std::string> path = cache_->VerifiedPath(id);
  EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss) << path.status();
  EXPECT_NE(access(planted.c_str(), F_OK), 0) << "the planted file is deleted";
  std::ofstream(planted) << "evil!\n";
  EXPECT_FALSE(cache_->Has(id));
  // A real upload then takes its place.
  ASSERT_TRUE(cache_->AddFile(id, Write("hello.txt", "hello\n")).ok());
  EXPECT_TRUE(cache_->VerifiedPath(id).ok());
}

TEST_F(BinaryCacheTest, PlantedSymlinkAndForeignFileAreNotPresent) {
  pb::BinaryId id = Id(kHelloSha, 6);
  std::string target = Write("hello.txt", "hello\n");  // even with the right bytes
  ASSERT_EQ(symlink(target.c_str(), cache_->PathOf(id).c_str()), 0);
  EXPECT_FALSE(cache_->Has(id));
  ASSERT_EQ(system(("cp " + target + " " + cache_->PathOf(id)).c_str()), 0);
  ASSERT_EQ(chown(cache_->PathOf(id).c_str(), 65534, 65534), 0);
  absl::StatusOr<std::string> path = cache_->VerifiedPath(id);
  EXPECT_FALSE(path.ok());
  EXPECT_NE(path.status().message().find("owned by uid 65534"), std::string::npos) << path.status();
}

// A file changed after it was uploaded (and verified) is hashed again.
TEST_F(BinaryCacheTest, FileModifiedAfterUploadIsCaught) {
  pb::BinaryId id = Id(kHelloSha, 6);
  ASSERT_TRUE(cache_->AddFile(id, Write("hello.txt", "hello\n")).ok());
  ASSERT_TRUE(cache_->VerifiedPath(id).ok());
  int fd = open(cache_->PathOf(id).c_str(), O_WRONLY);  // root ignores the read-only mode
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "J", 1, 0), 1);
  close(fd);
  absl::StatusOr<std::string> path = cache_->VerifiedPath(id);
  EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss) << path.status();
  EXPECT_FALSE(cache_->Has(id));
}

TEST_F(BinaryCacheTest, FileThereBeforeTheDaemonIsHashedOnce) {
  pb::BinaryId id = Id(kHelloSha, 6);
  std::string stored = cache_->PathOf(id);
  std::ofstream(stored) << "hello\n";  // e.g. from the daemon's previous run
  chmod(stored.c_str(), 0500);
  auto fresh = BinaryCache::Create(dir_ + "/cache");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_TRUE((*fresh)->Has(id));
  absl::StatusOr<std::string> path = (*fresh)->VerifiedPath(id);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, stored);
}

TEST_F(BinaryCacheTest, DirectoryIsCreatedPrivate) {
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_TRUE(BinaryCache::Create(dir_ + "/a/b/c").ok());
  ASSERT_EQ(stat((dir_ + "/a/b/c").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

void ExpectRefused(const std::string& dir, const std::string& why) {
  auto cache = BinaryCache::Create(dir);
  ASSERT_FALSE(cache.ok()) << dir << " was accepted";
  EXPECT_EQ(cache.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(cache.status().message().find(why), std::string::npos) << cache.status();
}

TEST_F(BinaryCacheTest, ForeignOwnedDirectoryIsRefused) {
  std::string dir = dir_ + "/planted";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(chown(dir.c_str(), 65534, 65534), 0);
  ExpectRefused(dir, "owned by uid 65534");
}

TEST_F(BinaryCacheTest, GroupOrWorldWritableDirectoryIsRefused) {
  std::string dir = dir_ + "/open";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  ExpectRefused(dir, "may write");
  ASSERT_EQ(chmod(dir.c_str(), 0770), 0);
  ExpectRefused(dir, "may write");
  // A private directory under a parent others can write (not sticky) is refused too.
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  ExpectRefused(dir + "/cache", "not sticky");
}

TEST_F(BinaryCacheTest, SymlinkedDirectoryIsRefused) {
  std::string real = dir_ + "/real";
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(symlink(real.c_str(), (dir_ + "/link").c_str()), 0);
  ExpectRefused(dir_ + "/link", "symlink");
}

TEST_F(BinaryCacheTest, OversizeIsRefusedBeforeAnythingIsWritten) {
  auto small = BinaryCache::Create(dir_ + "/small", 1000);
  ASSERT_TRUE(small.ok());
  auto upload = (*small)->Begin(Id(kHelloSha, 1001));
  ASSERT_FALSE(upload.ok());
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(upload.status().message().find("1001"), std::string::npos) << upload.status();
  EXPECT_NE(upload.status().message().find("1000"), std::string::npos) << upload.status();
  EXPECT_EQ(system(("test -z \"$(ls -A " + dir_ + "/small)\"").c_str()), 0) << "nothing written";
  EXPECT_TRUE((*small)->Begin(Id(kHelloSha, 1000)).ok());
  // The default limit is 4 GiB.
  EXPECT_EQ(cache_->Begin(Id(kHelloSha, (uint64_t{4} << 30) + 1)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

// An upload never writes more than it declared: the chunk that would go past
// it is refused whole.
TEST_F(BinaryCacheTest, UploadNeverWritesPastItsDeclaredSize) {
  auto upload = cache_->Begin(Id(kHelloSha, 6));
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Append("hell").ok());
  EXPECT_FALSE((*upload)->Append("o\nmore").ok());
  ASSERT_EQ(system(("test \"$(stat -c %s " + dir_ + "/cache/.upload-*)\" = 4").c_str()), 0);
}

TEST_F(BinaryCacheTest, AddFile) {
  std::string path = dir_ + "/hello.txt";
  std::ofstream(path) << "hello\n";
  ASSERT_TRUE(cache_->AddFile(Id(kHelloSha, 6), path).ok());
  EXPECT_TRUE(cache_->Has(Id(kHelloSha, 6)));
  EXPECT_FALSE(cache_->AddFile(Id(std::string(64, 'a'), 6), path).ok());
}

// ---- Adopt: the master's copy on the same machine, linked in -------------------------------

class AdoptTest : public BinaryCacheTest {
 protected:
  // What the master stores: read-only, owned by this uid.
  std::string Stored(const std::string& name, const std::string& bytes) {
    std::string path = Write(name, bytes);
    chmod(path.c_str(), 0500);
    return path;
  }
  // Entries of the cache directory, temporary files included.
  int CacheEntries() {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/cache")) (void)entry, ++n;
    return n;
  }
};

TEST_F(AdoptTest, LinksTheStoredFileInWithoutACopy) {
  pb::BinaryId id = Id(kHelloSha, 6);
  std::string master = Stored("master-copy", "hello\n");
  ASSERT_TRUE(cache_->Adopt(id, master).ok());
  EXPECT_TRUE(cache_->Has(id));
  struct stat theirs, ours;
  ASSERT_EQ(stat(master.c_str(), &theirs), 0);
  ASSERT_EQ(stat(cache_->PathOf(id).c_str(), &ours), 0);
  EXPECT_EQ(theirs.st_ino, ours.st_ino) << "a second copy was written";
  EXPECT_EQ(CacheEntries(), 1) << "a temporary name was left behind";
  // Again (a second master call, or already there): still one entry.
  ASSERT_TRUE(cache_->Adopt(id, cache_->PathOf(id)).ok());
  ASSERT_TRUE(cache_->Adopt(id, master).ok());
  EXPECT_EQ(CacheEntries(), 1);
}

TEST_F(AdoptTest, RefusesWhatIsNotTheBinaryAndKeepsNothing) {
  pb::BinaryId id = Id(kHelloSha, 6);
  std::string good = Stored("good", "hello\n");
  std::string lie = Stored("lie", "jello\n");
  std::string writable = Write("writable", "hello\n");
  chmod(writable.c_str(), 0700);
  std::string link = dir_ + "/link";
  ASSERT_EQ(symlink(good.c_str(), link.c_str()), 0);
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  struct {
    pb::BinaryId id;
    std::string path;
  } cases[] = {
      {id, lie},                                 // bytes that hash to something else
      {Id(kHelloSha, 5), good},                  // the wrong size
      {id, writable},                            // writable: could change after it was hashed
      {id, link},                                // a symlink
      {id, fifo},                                // not a regular file (and must not block)
      {id, dir_},                                // a directory
      {id, dir_ + "/missing"},                   // nothing there
      {id, "relative/path"},                     // not absolute
      {id, std::string("/tmp/a\0b", 8)},         // a NUL inside
      {id, "/" + std::string(5000, 'a')},        // too long
      {Id("../../etc/passwd", 6), good},         // not an id
      {Id(kHelloSha, uint64_t{1} << 40), good},  // over the size limit
  };
  for (const auto& c : cases) {
    absl::Status status = cache_->Adopt(c.id, c.path);
    EXPECT_FALSE(status.ok()) << c.path.substr(0, 80);
    EXPECT_FALSE(cache_->Has(id));
    EXPECT_EQ(CacheEntries(), 0) << c.path.substr(0, 80);
  }
}

// After a node's link, the master keeps its copy verified; a write is still caught.
TEST_F(AdoptTest, LinkedElsewhereForgivesTheLinkAloneNotAWrite) {
  pb::BinaryId id = Id(kHelloSha, 6);
  ASSERT_TRUE(cache_->AddFile(id, Write("hello.txt", "hello\n")).ok());
  ASSERT_TRUE(link(cache_->PathOf(id).c_str(), (dir_ + "/node-link").c_str()) == 0);
  cache_->LinkedElsewhere(id);
  EXPECT_TRUE(cache_->Has(id));
  int fd = open(cache_->PathOf(id).c_str(), O_WRONLY);  // root ignores the read-only mode
  ASSERT_GE(fd, 0);
  struct timespec later[2] = {{0, UTIME_OMIT}, {time(nullptr) + 100, 0}};
  ASSERT_EQ(pwrite(fd, "J", 1, 0), 1);
  ASSERT_EQ(futimens(fd, later), 0);  // the mtime moves for sure, whatever the clock's grain
  close(fd);
  cache_->LinkedElsewhere(id);
  EXPECT_EQ(cache_->VerifiedPath(id).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace constellation::daemon
