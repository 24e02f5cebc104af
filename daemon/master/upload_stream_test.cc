// IncomingBinaries and BinaryDistribution's streaming: a node receives a
// binary while the master still receives it, a failed or lying upload leaves
// nothing anywhere, two uploads of one binary are received once, and a node
// on the master's machine is offered the stored copy instead of the bytes.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <thread>

#include "daemon/master/binary_distribution.h"
#include "daemon/master/fake_node_client.h"
#include "daemon/master/incoming_binaries.h"
#include "gtest/gtest.h"

namespace constellation::daemon::master {
namespace {

class UploadStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::string(getenv("TEST_TMPDIR")) + "/cache-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    absl::StatusOr<std::unique_ptr<BinaryCache>> cache = BinaryCache::Create(dir_, 1 << 20);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    bytes_.resize(100'000);
    for (size_t i = 0; i < bytes_.size(); ++i) bytes_[i] = static_cast<char>(i * 7 + i / 251);
    id_.set_sha256(Sha256OfBytes(bytes_));
    id_.set_size(bytes_.size());
  }
  // What the cache directory holds, temporary files included.
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) names.push_back(entry.path().filename());
    return names;
  }

  std::string dir_;
  std::unique_ptr<BinaryCache> cache_;
  std::string bytes_;
  pb::BinaryId id_;
};

TEST_F(UploadStreamTest, NodeReceivesTheBinaryWhileTheClientStillSendsIt) {
  IncomingBinaries incoming(cache_.get());
  FakeNodeClient node("n1:1");  // another machine: no boot id in common
  BinaryDistribution distribution(cache_.get(), &incoming, "master-boot");
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> upload = incoming.Receive(id_);
  ASSERT_TRUE(upload.ok() && *upload != nullptr) << upload.status();
  ASSERT_TRUE((*upload)->Append(absl::string_view(bytes_).substr(0, 60'000)).ok());

  distribution.Prefetch(node, id_);
  // The node has every byte the master has received, and the master has not finished.
  ASSERT_TRUE(node.WaitFor([&] { return node.upload_progress() == 60'000; }));
  EXPECT_TRUE(node.binaries().empty()) << "stored before the master checked the whole binary";

  ASSERT_TRUE((*upload)->Append(absl::string_view(bytes_).substr(60'000)).ok());
  ASSERT_TRUE((*upload)->Finish().ok());
  EXPECT_TRUE(distribution.EnsureOn(node, id_).ok());  // waits for the prefetch; sends nothing again
  EXPECT_EQ(node.uploads(), 1);
  EXPECT_TRUE(node.binaries().contains(id_.sha256()));
  EXPECT_TRUE(cache_->Has(id_));
}

TEST_F(UploadStreamTest, ACorruptedUploadLeavesNothingOnTheMasterOrTheNode) {
  IncomingBinaries incoming(cache_.get());
  FakeNodeClient node("n1:1");  // outlives the distribution: its prefetches use it
  BinaryDistribution distribution(cache_.get(), &incoming, "master-boot");
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> upload = incoming.Receive(id_);
  ASSERT_TRUE(upload.ok() && *upload != nullptr);
  std::string lie = bytes_;
  lie[50'000] ^= 1;  // right size, wrong bytes
  ASSERT_TRUE((*upload)->Append(absl::string_view(lie).substr(0, 10'000)).ok());
  std::thread sender([&] { EXPECT_FALSE(distribution.EnsureOn(node, id_).ok()); });
  ASSERT_TRUE(node.WaitFor([&] { return node.upload_progress() == 10'000; }));
  ASSERT_TRUE((*upload)->Append(absl::string_view(lie).substr(10'000)).ok());
  EXPECT_TRUE(absl::IsDataLoss((*upload)->Finish()));
  sender.join();
  EXPECT_TRUE(node.binaries().empty());
  EXPECT_EQ(node.uploads(), 0);
  EXPECT_TRUE(Files().empty()) << Files()[0];
  EXPECT_FALSE(cache_->Has(id_));
}

TEST_F(UploadStreamTest, AnAbandonedUploadEndsItsFollowersWithAnError) {
  IncomingBinaries incoming(cache_.get());
  FakeNodeClient node("n1:1");
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> upload = incoming.Receive(id_);
  ASSERT_TRUE(upload.ok() && *upload != nullptr);
  std::unique_ptr<IncomingBinaries::Follower> follower = incoming.Follow(id_);
  ASSERT_NE(follower, nullptr);
  ASSERT_TRUE((*upload)->Append(absl::string_view(bytes_).substr(0, 1000)).ok());
  upload->reset();  // the client went away
  char buf[4096];
  absl::StatusOr<size_t> n = follower->Read(buf, sizeof(buf));
  EXPECT_FALSE(n.ok()) << "read on after the upload was abandoned";
  EXPECT_EQ(incoming.Follow(id_), nullptr);
  EXPECT_TRUE(Files().empty());
}

TEST_F(UploadStreamTest, AStalledUploadEndsItsFollowers) {
  IncomingBinaries incoming(cache_.get(), absl::Milliseconds(1));
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> upload = incoming.Receive(id_);
  ASSERT_TRUE(upload.ok() && *upload != nullptr);
  std::unique_ptr<IncomingBinaries::Follower> follower = incoming.Follow(id_);
  char buf[16];
  EXPECT_TRUE(absl::IsDeadlineExceeded(follower->Read(buf, sizeof(buf)).status()));
}

TEST_F(UploadStreamTest, TwoClientsSendingOneBinaryAreReceivedOnce) {
  IncomingBinaries incoming(cache_.get());
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> first = incoming.Receive(id_);
  ASSERT_TRUE(first.ok() && *first != nullptr);
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> second;
  std::thread other([&] { second = incoming.Receive(id_); });  // waits for the first
  ASSERT_TRUE((*first)->Append(bytes_).ok());
  ASSERT_TRUE((*first)->Finish().ok());
  other.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, nullptr) << "received a second time";
  EXPECT_TRUE(cache_->Has(id_));
}

// The caller checks the cache before Receive; the first upload may be stored
// and leave the map between that check and the second's claim.
TEST_F(UploadStreamTest, AnUploadClaimedJustAfterTheSameBinaryWasStoredIsNotReceived) {
  IncomingBinaries incoming(cache_.get());
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> first = incoming.Receive(id_);
  ASSERT_TRUE(first.ok() && *first != nullptr);
  ASSERT_TRUE((*first)->Append(bytes_).ok());
  ASSERT_TRUE((*first)->Finish().ok());
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> second = incoming.Receive(id_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, nullptr) << "received a second time";
  EXPECT_EQ(incoming.Follow(id_), nullptr);
}

TEST_F(UploadStreamTest, WhenTheFirstOfTwoUploadsFailsTheSecondIsReceived) {
  IncomingBinaries incoming(cache_.get());
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> first = incoming.Receive(id_);
  ASSERT_TRUE(first.ok() && *first != nullptr);
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> second;
  std::thread other([&] { second = incoming.Receive(id_); });
  ASSERT_TRUE((*first)->Append(bytes_.substr(0, 10)).ok());
  EXPECT_FALSE((*first)->Finish().ok());  // truncated
  other.join();
  ASSERT_TRUE(second.ok() && *second != nullptr);
  ASSERT_TRUE((*second)->Append(bytes_).ok());
  ASSERT_TRUE((*second)->Finish().ok());
  EXPECT_TRUE(cache_->Has(id_));
}

TEST_F(UploadStreamTest, ANodeOnTheMastersMachineIsOfferedTheStoredCopy) {
  IncomingBinaries incoming(cache_.get());
  FakeNodeClient node("n1:1");  // outlives the distribution: its prefetches use it
  BinaryDistribution distribution(cache_.get(), &incoming, "same-boot");
  node.boot_id = "same-boot";
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> upload = incoming.Receive(id_);
  ASSERT_TRUE(upload.ok() && *upload != nullptr);
  distribution.Prefetch(node, id_);  // waits for the master's copy: there is one copy per machine
  ASSERT_TRUE((*upload)->Append(bytes_).ok());
  ASSERT_TRUE((*upload)->Finish().ok());
  ASSERT_TRUE(distribution.EnsureOn(node, id_).ok());
  EXPECT_EQ(node.adopted_paths(), std::vector<std::string>{cache_->PathOf(id_)});
  EXPECT_EQ(node.uploads(), 0) << "sent the bytes to a node on the same machine";
}

TEST_F(UploadStreamTest, ANodeThatRefusesTheStoredCopyIsSentTheBytes) {
  ASSERT_TRUE(cache_
                  ->AddFile(id_,
                            [&] {
                              std::string path = dir_ + "-source";
                              FILE* f = fopen(path.c_str(), "w");
                              fwrite(bytes_.data(), 1, bytes_.size(), f);
                              fclose(f);
                              return path;
                            }())
                  .ok());
  FakeNodeClient node("n1:1");  // outlives the distribution: its prefetches use it
  BinaryDistribution distribution(cache_.get(), nullptr, "same-boot");
  node.boot_id = "same-boot";
  node.adopt_error = absl::FailedPreconditionError("another filesystem");
  ASSERT_TRUE(distribution.EnsureOn(node, id_).ok());
  EXPECT_EQ(node.adopted_paths().size(), 1u);
  EXPECT_EQ(node.uploads(), 1);
}

}  // namespace
}  // namespace constellation::daemon::master
