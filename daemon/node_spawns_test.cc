// SpawnRelay (issue 12, item 3): spawn requests go to the master with the
// callback API; one made while the master is away waits for it; calls are
// cancelled on demand and by Shutdown, which returns only once every reply
// has been given. A fake master on 127.0.0.1 (insecure).
#include "daemon/node_spawns.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "daemon/grpc_util.h"
#include "daemon/testing/socket_dir.h"
#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

class FakeMaster final : public pb::Master::Service {
 public:
  grpc::Status Spawn(grpc::ServerContext*, const pb::MasterSpawnRequest* request, pb::SpawnReply* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    deployments_.push_back(request->deployment());
    reply->mutable_child()->set_port(4242);
    return grpc::Status::OK;
  }
  std::vector<uint64_t> deployments() {
    std::lock_guard<std::mutex> lock(mu_);
    return deployments_;
  }

 private:
  std::mutex mu_;
  std::vector<uint64_t> deployments_;
};

std::unique_ptr<grpc::Server> Serve(grpc::Service* service, const std::string& addr, int* port) {
  grpc::ServerBuilder builder;
  ConfigureServer(builder);
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

// An address where no master listens yet, and where one can listen later
// without racing anyone for it: a unix socket in a private directory (a
// released TCP port could be taken by another test meanwhile).
std::string AbsentMaster() { return testing::NewUnixSocketAddress("node_spawns_test"); }

pb::SpawnRequest Request(uint64_t id) {
  pb::SpawnRequest request;
  request.set_id(id);
  return request;
}

// A reply function that fulfils a promise (once).
struct Answer {
  std::promise<pb::SpawnReply> promise;
  std::future<pb::SpawnReply> future = promise.get_future();
  NodeAgent::Reply reply() {
    return [this](const pb::SpawnReply& r) { promise.set_value(r); };
  }
  // The reply (30 s failure guard); false if none came.
  bool Get(pb::SpawnReply* out) {
    if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) return false;
    *out = future.get();
    return true;
  }
  bool given() { return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
};

TEST(SpawnRelay, WithoutAMasterTheAnswerIsUnavailableAtOnce) {
  SpawnRelay relay(grpc::InsecureChannelCredentials());
  Answer answer;
  relay.Relay(1, Request(7), answer.reply());
  ASSERT_TRUE(answer.given());
  pb::SpawnReply reply;
  ASSERT_TRUE(answer.Get(&reply));
  EXPECT_EQ(reply.id(), 7u);
  EXPECT_EQ(reply.code(), static_cast<int>(absl::StatusCode::kUnavailable));
}

TEST(SpawnRelay, TheMastersAnswerComesBackThroughTheReply) {
  FakeMaster master;
  int port = 0;
  std::unique_ptr<grpc::Server> server = Serve(&master, "127.0.0.1:0", &port);
  ASSERT_NE(server, nullptr);
  SpawnRelay relay(grpc::InsecureChannelCredentials());
  relay.SetMaster(absl::StrCat("127.0.0.1:", port));
  Answer answer;
  relay.Relay(3, Request(42), answer.reply());
  pb::SpawnReply reply;
  ASSERT_TRUE(answer.Get(&reply));
  EXPECT_EQ(reply.id(), 42u);
  EXPECT_EQ(reply.code(), 0);
  EXPECT_EQ(reply.child().port(), 4242u);
  EXPECT_EQ(master.deployments(), std::vector<uint64_t>{3});
  relay.Shutdown();
  server->Shutdown(std::chrono::system_clock::now());
}

// The master is restarting (nothing listens at its address): the call waits
// and goes through once a master listens there again.
TEST(SpawnRelay, ASpawnWhileTheMasterIsAwayWaitsForItToComeBack) {
  std::string absent = AbsentMaster();
  SpawnRelay relay(grpc::InsecureChannelCredentials());
  relay.SetMaster(absent);
  Answer answer;
  relay.Relay(3, Request(1), answer.reply());
  EXPECT_EQ(relay.in_flight(), 1u);
  EXPECT_FALSE(answer.given()) << "failed at once instead of waiting for the master";
  FakeMaster master;
  int bound = 0;
  std::unique_ptr<grpc::Server> server = Serve(&master, absent, &bound);
  ASSERT_NE(server, nullptr) << "cannot listen at " << absent;
  pb::SpawnReply reply;
  ASSERT_TRUE(answer.Get(&reply)) << "the call did not go through to the master that came back";
  EXPECT_EQ(reply.code(), 0);
  EXPECT_EQ(master.deployments(), std::vector<uint64_t>{3});
  relay.Shutdown();
  server->Shutdown(std::chrono::system_clock::now());
}

TEST(SpawnRelay, CancelAllAnswersTheWaitingCalls) {
  std::string absent = AbsentMaster();
  SpawnRelay relay(grpc::InsecureChannelCredentials());
  relay.SetMaster(absent);
  Answer answer;
  relay.Relay(3, Request(5), answer.reply());
  relay.CancelAll();
  pb::SpawnReply reply;
  ASSERT_TRUE(answer.Get(&reply));
  EXPECT_EQ(reply.id(), 5u);
  EXPECT_EQ(reply.code(), static_cast<int>(grpc::StatusCode::CANCELLED));
}

TEST(SpawnRelay, ANewMasterAddressCancelsCallsWaitingForTheOld) {
  std::string absent = AbsentMaster();
  SpawnRelay relay(grpc::InsecureChannelCredentials());
  relay.SetMaster(absent);
  Answer answer;
  relay.Relay(3, Request(5), answer.reply());
  relay.SetMaster(absent);  // the same: nothing changes
  EXPECT_FALSE(answer.given());
  relay.SetMaster("127.0.0.1:1");
  pb::SpawnReply reply;
  ASSERT_TRUE(answer.Get(&reply));
  EXPECT_EQ(reply.code(), static_cast<int>(grpc::StatusCode::CANCELLED));
}

TEST(SpawnRelay, ShutdownReturnsOnlyOnceEveryReplyIsGivenAndRefusesLaterOnes) {
  std::string absent = AbsentMaster();
  SpawnRelay relay(grpc::InsecureChannelCredentials());
  relay.SetMaster(absent);
  Answer waiting[3];
  for (Answer& a : waiting) relay.Relay(3, Request(1), a.reply());
  relay.Shutdown();
  for (Answer& a : waiting) EXPECT_TRUE(a.given()) << "a callback may still run";
  EXPECT_EQ(relay.in_flight(), 0u);
  Answer late;
  relay.Relay(3, Request(2), late.reply());
  pb::SpawnReply reply;
  ASSERT_TRUE(late.Get(&reply));
  EXPECT_EQ(reply.code(), static_cast<int>(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace constellation::daemon
