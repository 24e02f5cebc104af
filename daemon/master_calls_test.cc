// MasterCalls: the master link the node's relays share. Without a master:
// its calls wait for one at an address where nothing listens (a unix socket
// in a private directory), so each stays in flight until it is cancelled.
#include "daemon/master_calls.h"

#include <stdlib.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "daemon/testing/socket_dir.h"
#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

std::string AbsentMaster() { return testing::NewUnixSocketAddress("master_calls_test"); }

struct Call {
  grpc::ClientContext context;
  pb::MasterSpawnRequest request;
  pb::SpawnReply answer;
  std::promise<grpc::StatusCode> promise;
  std::future<grpc::StatusCode> ended = promise.get_future();
};

// Starts a Master.Spawn that waits for the master; its callback ends it
// (Finish) the way the relays do. The returned future is its status.
std::future<grpc::StatusCode> StartWaiting(MasterCalls& link, MasterCalls::Stub* stub = nullptr) {
  auto call = std::make_shared<Call>();
  call->context.set_wait_for_ready(true);
  std::future<grpc::StatusCode> ended = std::move(call->ended);
  absl::StatusOr<MasterCalls::Stub> master = link.Start(call);
  EXPECT_TRUE(master.ok()) << master.status();
  if (!master.ok()) return ended;
  if (stub != nullptr) *stub = *master;
  Call* raw = call.get();
  (*master)->async()->Spawn(&raw->context, &raw->request, &raw->answer,
                            [&link, call = std::move(call)](grpc::Status status) mutable {
                              link.SeeStarted();
                              call->promise.set_value(status.error_code());
                              link.Finish(std::move(call));
                            });
  return ended;
}

bool Ended(std::future<grpc::StatusCode>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

// The status a call ended with (30 s failure guard; DEADLINE_EXCEEDED if it did not end).
grpc::StatusCode EndOf(std::future<grpc::StatusCode>& f) {
  if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) return grpc::StatusCode::DEADLINE_EXCEEDED;
  return f.get();
}

TEST(MasterCalls, ShutdownWithoutCallsReturnsAtOnceAndMayBeRepeated) {
  MasterCalls link(grpc::InsecureChannelCredentials());
  link.Shutdown();
  link.Shutdown();
  EXPECT_EQ(link.in_flight(), 0u);
}

TEST(MasterCalls, NoCallStartsBeforeAMasterIsSet) {
  MasterCalls link(grpc::InsecureChannelCredentials());
  absl::StatusOr<MasterCalls::Stub> master = link.Start(std::make_shared<Call>());
  EXPECT_EQ(master.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(master.status().message(), "this node has no master");
  EXPECT_EQ(link.in_flight(), 0u);
}

TEST(MasterCalls, TheSameAddressAgainKeepsTheStubAndItsCalls) {
  std::string absent = AbsentMaster();
  MasterCalls link(grpc::InsecureChannelCredentials());
  link.SetMaster(absent);
  MasterCalls::Stub first, second;
  std::future<grpc::StatusCode> waiting = StartWaiting(link, &first);
  link.SetMaster(absent);
  std::future<grpc::StatusCode> other = StartWaiting(link, &second);
  EXPECT_EQ(first.get(), second.get()) << "a new stub for the same address";
  EXPECT_EQ(link.in_flight(), 2u);
  EXPECT_FALSE(Ended(waiting));
  link.Shutdown();
  EXPECT_EQ(EndOf(waiting), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(EndOf(other), grpc::StatusCode::CANCELLED);
}

TEST(MasterCalls, ANewAddressCancelsTheCallsWaitingForTheOld) {
  MasterCalls link(grpc::InsecureChannelCredentials());
  link.SetMaster(AbsentMaster());
  MasterCalls::Stub old_stub, new_stub;
  std::future<grpc::StatusCode> stale = StartWaiting(link, &old_stub);
  link.SetMaster(AbsentMaster());
  EXPECT_EQ(EndOf(stale), grpc::StatusCode::CANCELLED);
  std::future<grpc::StatusCode> fresh = StartWaiting(link, &new_stub);
  EXPECT_NE(old_stub.get(), new_stub.get());
  EXPECT_FALSE(Ended(fresh));
  link.CancelAll();
  EXPECT_EQ(EndOf(fresh), grpc::StatusCode::CANCELLED);
}

TEST(MasterCalls, ShutdownReturnsOnlyOnceEveryCallEndedAndRefusesLaterOnes) {
  MasterCalls link(grpc::InsecureChannelCredentials());
  link.SetMaster(AbsentMaster());
  std::future<grpc::StatusCode> waiting[3];
  for (auto& f : waiting) f = StartWaiting(link);
  EXPECT_EQ(link.in_flight(), 3u);
  link.Shutdown();
  for (auto& f : waiting) EXPECT_TRUE(Ended(f)) << "a callback may still run";
  EXPECT_EQ(link.in_flight(), 0u);
  link.SetMaster(AbsentMaster());  // ignored
  absl::StatusOr<MasterCalls::Stub> late = link.Start(std::make_shared<Call>());
  EXPECT_EQ(late.status().message(), "this node is shutting down");
  EXPECT_EQ(link.in_flight(), 0u);
}

}  // namespace
}  // namespace constellation::daemon
