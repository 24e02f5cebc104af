// Issue 12: what an operator's tools see. Every daemon answers gRPC's
// standard health check (SERVING, also per service) and server reflection
// (grpcurl can list and describe the job API), over the cluster's mutual TLS.
#include <unistd.h>

#include <string>
#include <vector>

#include "daemon/security/credentials.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"
#include "tests/cluster/grpc_protos/health.grpc.pb.h"
#include "tests/cluster/grpc_protos/reflection.grpc.pb.h"

namespace constellation::testing {
namespace {

using ::testing::Contains;
using ::testing::IsSupersetOf;

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials() {
  daemon::security::TlsFlags flags;
  flags.bundle_dir = TestPki::Get().Client();
  absl::StatusOr<daemon::security::Credentials> credentials =
      daemon::security::LoadForRole(flags, "", {daemon::security::Role::kClient}, "operator_test");
  EXPECT_TRUE(credentials.ok()) << credentials.status();
  return credentials->ChannelCredentials();
}

// The status the daemon at `addr` reports for `service` ("" = the server).
std::string Health(const std::string& addr, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(addr, ClientCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return "error " + std::to_string(status.error_code()) + ": " + status.error_message();
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

// Health.Watch on `service` until it says SERVING (or 30 s pass): the last status seen.
std::string WatchUntilServing(const std::string& addr, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(addr, ClientCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  auto stream = stub->Watch(&context, request);
  grpc::health::v1::HealthCheckResponse response;
  std::string last = "nothing";
  while (stream->Read(&response)) {
    last = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
    if (response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      context.TryCancel();
      break;
    }
  }
  stream->Finish().IgnoreError();
  return last;
}

std::vector<std::string> ListServices(const std::string& addr) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(grpc::CreateChannel(addr, ClientCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  EXPECT_TRUE(stream->Write(request));
  stream->WritesDone();
  std::vector<std::string> names;
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  while (stream->Read(&response)) {
    for (const auto& service : response.list_services_response().service()) names.push_back(service.name());
  }
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return names;
}

class Operator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new Cluster(ThreeNodeLoopback()); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->ok()) << cluster_->Describe(); }
  static Cluster* cluster_;
};
Cluster* Operator::cluster_ = nullptr;

TEST_F(Operator, EveryDaemonAnswersTheHealthCheckServing) {
  EXPECT_EQ(Health(cluster_->bridge_addr(), ""), "SERVING");
  EXPECT_EQ(Health(cluster_->bridge_addr(), "constellation.v1.Jobs"), "SERVING");
  EXPECT_EQ(Health(cluster_->master_addr(), ""), "SERVING");
  EXPECT_EQ(Health(cluster_->master_addr(), "constellation.pb.Master"), "SERVING");
  for (size_t i = 0; i < cluster_->size(); ++i) {
    EXPECT_EQ(Health(cluster_->node_addr(i), ""), "SERVING") << "node " << i;
    EXPECT_EQ(Health(cluster_->node_addr(i), "constellation.pb.Node"), "SERVING") << "node " << i;
  }
  EXPECT_EQ(Health(cluster_->bridge_addr(), "no.such.Service"), "error 5: service name unknown") << "NOT_FOUND";
}

// Readiness for orchestrators (deploy/kubernetes): "constellation.Joined" is
// SERVING while a master is attached to the node, whether nodes.toml lists it
// or it joined; NOT_SERVING on a node no master has.
TEST_F(Operator, NodesReportWhetherAMasterHasThem) {
  for (size_t i = 0; i < cluster_->size(); ++i) {
    EXPECT_EQ(Health(cluster_->node_addr(i), "constellation.Joined"), "SERVING") << "node " << i;
  }
  std::vector<std::string> lone_argv = {DaemonPath(), "127.0.0.1:0", "--cache-dir=" + MakeTempDir("lone-"),
                                        "--tls=" + TestPki::Get().Node("127.0.0.1")};
  if (geteuid() == 0) lone_argv.push_back("--run-as=root");
  Daemon lone("lone node", lone_argv);
  absl::StatusOr<std::string> lone_addr = lone.WaitListening("node", absl::Seconds(30));
  ASSERT_TRUE(lone_addr.ok()) << lone_addr.status();
  EXPECT_EQ(Health(*lone_addr, "constellation.Joined"), "NOT_SERVING");

  std::vector<std::string> joiner_argv = lone_argv;
  joiner_argv[2] = "--cache-dir=" + MakeTempDir("joiner-");
  joiner_argv.push_back("--join=" + cluster_->master_addr());
  Daemon joiner("joining node", joiner_argv);
  absl::StatusOr<std::string> joiner_addr = joiner.WaitListening("node", absl::Seconds(30));
  ASSERT_TRUE(joiner_addr.ok()) << joiner_addr.status();
  // Joining takes a round trip and the master's attach: watch for it (bounded).
  EXPECT_EQ(WatchUntilServing(*joiner_addr, "constellation.Joined"), "SERVING") << joiner.Describe();
}

TEST_F(Operator, ReflectionListsTheJobApi) {
  EXPECT_THAT(ListServices(cluster_->bridge_addr()), IsSupersetOf({"constellation.v1.Jobs", "grpc.health.v1.Health"}));
  EXPECT_THAT(ListServices(cluster_->master_addr()), Contains("constellation.pb.Master"));
  EXPECT_THAT(ListServices(cluster_->node_addr(0)), Contains("constellation.pb.Node"));
}

}  // namespace
}  // namespace constellation::testing
