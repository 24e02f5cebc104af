// GoneTable: watches answered at once or when the verdict comes, once per
// connection and pid; who is asked of the master; closing, dropping, bounds.
#include "daemon/gone_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::ToProto;
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

Pid P(uint16_t port) { return Pid::FromIpv4(0x0a000002, port, 1); }

pb::ProcessGone Exited(const Pid& pid, int code) {
  pb::ProcessGone gone;
  *gone.mutable_pid() = ToProto(pid);
  gone.mutable_exit()->set_code(code);
  return gone;
}

pb::ProcessGone Lost(const Pid& pid) {
  pb::ProcessGone gone;
  *gone.mutable_pid() = ToProto(pid);
  gone.set_node_lost(true);
  return gone;
}

bool Remote(const Pid&) { return false; }

std::vector<int> ConnsOf(const std::vector<GoneTable::Notice>& notices) {
  std::vector<int> conns;
  for (const GoneTable::Notice& n : notices) conns.push_back(n.conn);
  return conns;
}

TEST(GoneTable, AWatchedPidIsAskedOnceAndEveryWatcherIsToldOnce) {
  GoneTable table;
  absl::StatusOr<GoneTable::WatchResult> first = table.Watch(1, 7, {P(1), P(2)}, Remote);
  ASSERT_TRUE(first.ok());
  EXPECT_THAT(first->now, IsEmpty());
  EXPECT_THAT(first->ask, ElementsAre(P(1), P(2)));
  absl::StatusOr<GoneTable::WatchResult> second = table.Watch(2, 7, {P(1)}, Remote);
  ASSERT_TRUE(second.ok());
  EXPECT_THAT(second->ask, IsEmpty()) << "asked already for connection 1";
  EXPECT_TRUE(table.Watch(1, 7, {P(1)}, Remote)->ask.empty()) << "asking twice is harmless";

  std::vector<GoneTable::Notice> told = table.Gone(7, Lost(P(1)));
  EXPECT_THAT(ConnsOf(told), UnorderedElementsAre(1, 2));
  EXPECT_TRUE(told[0].gone.node_lost());
  EXPECT_THAT(table.Gone(7, Exited(P(1), 0)), IsEmpty()) << "once per pid";
  EXPECT_EQ(table.watches(1), 1u) << "P(2) still";
  EXPECT_EQ(table.watches(2), 0u);
}

TEST(GoneTable, AVerdictKnownAlreadyIsAnsweredAtOnceAndTheFirstStands) {
  GoneTable table;
  EXPECT_THAT(table.Gone(7, Exited(P(1), 3)), IsEmpty());
  table.Gone(7, Lost(P(1)));
  absl::StatusOr<GoneTable::WatchResult> result = table.Watch(1, 7, {P(1)}, Remote);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->now.size(), 1u);
  EXPECT_EQ(result->now[0].exit().code(), 3);
  EXPECT_FALSE(result->now[0].node_lost());
  EXPECT_THAT(result->ask, IsEmpty());
  EXPECT_EQ(table.watches(1), 0u);
}

TEST(GoneTable, ThisNodesOwnProcessesAreNotAskedOfTheMaster) {
  GoneTable table;
  absl::StatusOr<GoneTable::WatchResult> result =
      table.Watch(1, 7, {P(1), P(2)}, [](const Pid& pid) { return pid == P(1); });
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result->ask, ElementsAre(P(2)));
  // Its monitor's exit report is the verdict.
  EXPECT_THAT(ConnsOf(table.Gone(7, Exited(P(1), 0))), ElementsAre(1));
}

TEST(GoneTable, DeploymentsAreApart) {
  GoneTable table;
  table.Gone(7, Exited(P(1), 0));
  absl::StatusOr<GoneTable::WatchResult> result = table.Watch(1, 8, {P(1)}, Remote);
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result->now, IsEmpty());
  EXPECT_THAT(result->ask, ElementsAre(P(1)));
  EXPECT_THAT(table.Gone(7, Exited(P(1), 0)), IsEmpty());
}

TEST(GoneTable, AClosedConnectionIsToldNothingAndItsWatchesAreForgotten) {
  GoneTable table;
  ASSERT_TRUE(table.Watch(1, 7, {P(1), P(2)}, Remote).ok());
  ASSERT_TRUE(table.Watch(2, 7, {P(2)}, Remote).ok());
  table.Close(1);
  EXPECT_EQ(table.watches(1), 0u);
  EXPECT_THAT(table.Gone(7, Exited(P(1), 0)), IsEmpty());
  EXPECT_THAT(ConnsOf(table.Gone(7, Exited(P(2), 0))), ElementsAre(2));
  EXPECT_THAT(table.Pending(), IsEmpty());
}

// After the master comes back, every pid still waited on is asked again.
TEST(GoneTable, PendingListsWhatIsWatchedAndNotGone) {
  GoneTable table;
  ASSERT_TRUE(table.Watch(1, 7, {P(1), P(2)}, Remote).ok());
  ASSERT_TRUE(table.Watch(2, 8, {P(3)}, Remote).ok());
  table.Gone(7, Exited(P(2), 0));
  std::map<uint64_t, std::vector<Pid>> pending = table.Pending();
  EXPECT_THAT(pending[7], ElementsAre(P(1)));
  EXPECT_THAT(pending[8], ElementsAre(P(3)));
}

TEST(GoneTable, ADroppedDeploymentForgetsItsVerdictsAndWatches) {
  GoneTable table;
  table.Gone(7, Exited(P(1), 0));
  ASSERT_TRUE(table.Watch(1, 7, {P(2)}, Remote).ok());
  table.Drop(7);
  EXPECT_EQ(table.deployments(), 0u);
  EXPECT_EQ(table.watches(1), 0u);
  EXPECT_EQ(table.known(7), 0u);
}

TEST(GoneTable, APacketOfTooManyPidsIsAProtocolError) {
  GoneTable table;
  std::vector<Pid> pids(GoneTable::kMaxPidsPerPacket + 1, P(1));
  EXPECT_TRUE(absl::IsInvalidArgument(table.Watch(1, 7, pids, Remote).status()));
  std::vector<Pid> most(GoneTable::kMaxPidsPerPacket, P(1));
  EXPECT_TRUE(table.Watch(1, 7, most, Remote).ok());
}

TEST(GoneTable, AConnectionWatchesABoundedNumberAtOnce) {
  GoneTable table;
  for (size_t i = 0; i < GoneTable::kMaxWatchesPerConn; i += GoneTable::kMaxPidsPerPacket) {
    std::vector<Pid> pids;
    for (size_t j = i; j < i + GoneTable::kMaxPidsPerPacket; ++j) pids.push_back(Pid::FromIpv4(1, 1, uint32_t(j)));
    ASSERT_TRUE(table.Watch(1, 7, pids, Remote).ok());
  }
  EXPECT_EQ(table.watches(1), GoneTable::kMaxWatchesPerConn);
  EXPECT_TRUE(absl::IsResourceExhausted(table.Watch(1, 7, {P(1)}, Remote).status()));
  EXPECT_TRUE(table.Watch(2, 7, {P(1)}, Remote).ok()) << "another connection is not affected";
}

TEST(GoneTable, VerdictsPerDeploymentAreBoundedOldestFirst) {
  GoneTable table;
  for (uint32_t i = 0; i <= GoneTable::kMaxGonePerDeployment; ++i) {
    pb::ProcessGone gone;
    *gone.mutable_pid() = ToProto(Pid::FromIpv4(1, 1, i));
    table.Gone(7, gone);
  }
  EXPECT_EQ(table.known(7), GoneTable::kMaxGonePerDeployment);
  absl::StatusOr<GoneTable::WatchResult> oldest = table.Watch(1, 7, {Pid::FromIpv4(1, 1, 0)}, Remote);
  ASSERT_TRUE(oldest.ok());
  EXPECT_THAT(oldest->ask, ElementsAre(Pid::FromIpv4(1, 1, 0))) << "forgotten: the master is asked again";
  absl::StatusOr<GoneTable::WatchResult> newest = table.Watch(1, 7, {Pid::FromIpv4(1, 1, 1)}, Remote);
  EXPECT_EQ(newest->now.size(), 1u);
}

}  // namespace
}  // namespace constellation::daemon
