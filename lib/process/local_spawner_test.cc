// LocalSpawner with a fake launcher: accounting against the capacity, the
// root's share, waiting and its end, and the stuck-program rule.
#include "lib/process/local_spawner.h"

#include <vector>

#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::internal {
namespace {

Pid MakePid(uint16_t port) {
  return Pid(Pid::Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}, port, port);
}

class LocalSpawnerTest : public ::testing::Test {
 protected:
  void Make(Resources capacity) {
    spawner_ =
        std::make_unique<LocalSpawner>(capacity,
                                       [this](const Pid& parent, const Resources& resources,
                                              const pb::SpawnRequest&) -> absl::StatusOr<LocalSpawner::Launched> {
                                         if (fail_launch_) return absl::InternalError("exec failed");
                                         launched_.push_back({parent, resources});
                                         return LocalSpawner::Launched{MakePid(next_port_++), 1000 + next_port_};
                                       });
  }

  pb::SpawnRequest Request(uint64_t id, uint64_t mem, double cpu, bool wait) {
    pb::SpawnRequest request;
    request.set_id(id);
    *request.mutable_resources() = ToProto(Resources{mem, cpu});
    request.set_wait(wait);
    *request.mutable_parent() = ToProto(MakePid(9999));  // ignored: a process spawns as itself
    return request;
  }

  std::unique_ptr<LocalSpawner> spawner_;
  std::vector<std::pair<Pid, Resources>> launched_;
  bool fail_launch_ = false;
  uint16_t next_port_ = 100;
  const Pid root_ = MakePid(1);
};

TEST_F(LocalSpawnerTest, TrySpawnFailsExactlyWhenFull) {
  Make({2 * kGiB, 4});
  ASSERT_TRUE(spawner_->AddRoot(root_, {512 * kMiB, 1}).ok());
  spawner_->Request(root_, Request(1, kGiB, 1, false));
  spawner_->Request(root_, Request(2, 512 * kMiB, 1, false));
  spawner_->Request(root_, Request(3, 1, 0.01, false));  // one byte more than is left
  std::vector<LocalSpawner::Outcome> out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].launched.has_value());
  EXPECT_EQ(out[0].reply.id(), 1u);
  EXPECT_EQ(out[0].requester, root_);
  EXPECT_EQ(launched_[0].first, root_);
  EXPECT_TRUE(out[1].launched.has_value());
  EXPECT_FALSE(out[2].launched.has_value());
  EXPECT_EQ(out[2].reply.code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(spawner_->running(), 3u);
}

TEST_F(LocalSpawnerTest, CpuCountsToo) {
  Make({8 * kGiB, 1});
  ASSERT_TRUE(spawner_->AddRoot(root_, {kMiB, 0.5}).ok());
  spawner_->Request(root_, Request(1, kMiB, 0.5, false));
  spawner_->Request(root_, Request(2, kMiB, 0.0625, false));
  std::vector<LocalSpawner::Outcome> out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].launched.has_value());
  EXPECT_EQ(out[1].reply.code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
}

TEST_F(LocalSpawnerTest, RootBiggerThanCapacityIsAnError) {
  Make({kGiB, 1});
  absl::Status status = spawner_->AddRoot(root_, {2 * kGiB, 0.1});
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_NE(status.message().find("CONSTELLATION_CAPACITY"), std::string::npos) << status;
}

TEST_F(LocalSpawnerTest, SpawnWaitsUntilASiblingExits) {
  Make({kGiB, 4});
  ASSERT_TRUE(spawner_->AddRoot(root_, {256 * kMiB, 0.1}).ok());
  spawner_->Request(root_, Request(1, 512 * kMiB, 0.1, false));
  std::vector<LocalSpawner::Outcome> first = spawner_->TakeOutcomes();
  ASSERT_TRUE(first[0].launched.has_value());
  Pid sibling = first[0].launched->pid;
  spawner_->Request(root_, Request(2, 512 * kMiB, 0.1, true));
  EXPECT_TRUE(spawner_->TakeOutcomes().empty()) << "spawn() must wait while full";
  EXPECT_EQ(spawner_->waiting(), 1u);
  spawner_->Exited(sibling);
  std::vector<LocalSpawner::Outcome> out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].launched.has_value());
  EXPECT_EQ(out[0].reply.id(), 2u);
  EXPECT_EQ(spawner_->waiting(), 0u);
}

TEST_F(LocalSpawnerTest, SpawnThatCouldNeverFitFailsAtOnce) {
  Make({kGiB, 4});
  ASSERT_TRUE(spawner_->AddRoot(root_, {256 * kMiB, 0.1}).ok());
  spawner_->Request(root_, Request(1, 2 * kGiB, 0.1, true));
  std::vector<LocalSpawner::Outcome> out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reply.code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
}

TEST_F(LocalSpawnerTest, WaitingRequestOfAnExitedProcessIsWithdrawn) {
  Make({kGiB, 4});
  ASSERT_TRUE(spawner_->AddRoot(root_, {256 * kMiB, 0.1}).ok());
  spawner_->Request(root_, Request(1, 512 * kMiB, 0.1, false));
  Pid child = spawner_->TakeOutcomes()[0].launched->pid;
  spawner_->Request(child, Request(7, 512 * kMiB, 0.1, true));  // waits: root and child hold the room
  EXPECT_EQ(spawner_->waiting(), 1u);
  spawner_->Exited(child);  // killed while waiting: frees its room, and its request goes
  EXPECT_EQ(spawner_->waiting(), 0u);
  EXPECT_TRUE(spawner_->TakeOutcomes().empty());
  EXPECT_EQ(launched_.size(), 1u);
}

TEST_F(LocalSpawnerTest, FailedLaunchGivesTheRoomBack) {
  Make({kGiB, 4});
  ASSERT_TRUE(spawner_->AddRoot(root_, {256 * kMiB, 0.1}).ok());
  fail_launch_ = true;
  spawner_->Request(root_, Request(1, 512 * kMiB, 0.1, false));
  std::vector<LocalSpawner::Outcome> out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reply.code(), static_cast<int>(absl::StatusCode::kInternal));
  fail_launch_ = false;
  spawner_->Request(root_, Request(2, 768 * kMiB, 0.1, false));
  out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].launched.has_value()) << out[0].reply.message();
}

TEST_F(LocalSpawnerTest, EveryHolderWaitingFailsTheOldestInsteadOfHanging) {
  Make({kGiB, 4});
  ASSERT_TRUE(spawner_->AddRoot(root_, {512 * kMiB, 0.1}).ok());
  spawner_->Request(root_, Request(1, 256 * kMiB, 0.1, false));
  Pid child = spawner_->TakeOutcomes()[0].launched->pid;
  spawner_->Request(child, Request(2, 512 * kMiB, 0.1, true));
  EXPECT_TRUE(spawner_->TakeOutcomes().empty()) << "the root could still exit or finish";
  spawner_->Request(root_, Request(3, 512 * kMiB, 0.1, true));
  std::vector<LocalSpawner::Outcome> out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 1u) << "the oldest waiter fails; then the child is no longer waiting";
  EXPECT_EQ(out[0].requester, child);
  EXPECT_EQ(out[0].reply.code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(out[0].reply.message().find("wait forever"), std::string::npos) << out[0].reply.message();
  EXPECT_EQ(spawner_->waiting(), 1u);
  spawner_->Exited(child);  // it gave up and ended: the root's request fits now
  out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].launched.has_value());
  EXPECT_EQ(out[0].reply.id(), 3u);
}

TEST_F(LocalSpawnerTest, FailingTheOldestWaiterCanLetAYoungerOneThrough) {
  Make({kGiB, 4});
  ASSERT_TRUE(spawner_->AddRoot(root_, {512 * kMiB, 0.1}).ok());
  spawner_->Request(root_, Request(1, 256 * kMiB, 0.1, false));
  Pid child = spawner_->TakeOutcomes()[0].launched->pid;
  spawner_->Request(root_, Request(2, 600 * kMiB, 0.1, true));  // 256 MiB free: waits
  spawner_->Request(child, Request(3, 100 * kMiB, 0.1, true));  // would fit, but the root's request is ahead
  std::vector<LocalSpawner::Outcome> out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].reply.id(), 2u);
  EXPECT_EQ(out[0].reply.code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(out[1].reply.id(), 3u);
  EXPECT_TRUE(out[1].launched.has_value()) << "the child's small request fits once the big one is gone";
}

TEST_F(LocalSpawnerTest, ShutdownFailsWaitersAndLaunchesNothingMore) {
  Make({kGiB, 4});
  ASSERT_TRUE(spawner_->AddRoot(root_, {512 * kMiB, 0.1}).ok());
  spawner_->Request(root_, Request(1, 512 * kMiB, 0.1, false));
  Pid child = spawner_->TakeOutcomes()[0].launched->pid;
  spawner_->Request(child, Request(2, 512 * kMiB, 0.1, true));  // waits: the root may still exit
  spawner_->Shutdown();
  std::vector<LocalSpawner::Outcome> out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reply.code(), static_cast<int>(absl::StatusCode::kUnavailable));
  spawner_->Exited(root_);  // the room it frees starts nothing
  spawner_->Request(child, Request(3, kMiB, 0.1, false));
  out = spawner_->TakeOutcomes();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reply.code(), static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_EQ(launched_.size(), 1u);
}

}  // namespace
}  // namespace constellation::internal
