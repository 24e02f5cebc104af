// Issue 11, item 1: the control plane admits only the cluster's certificates,
// and each role only to the calls that are its business. Every attack is made
// for real against running daemons (a TLS loopback cluster): a caller with no
// certificate, one from a rogue CA, a node certificate on the bridge, and
// client or node certificates on a node's and the master's services. Each is
// refused with UNAVAILABLE/UNAUTHENTICATED (no verified certificate: the TLS
// handshake fails) or PERMISSION_DENIED (wrong role), and nothing runs: a
// script that would leave a marker file never does, and a deployment the
// attacker tries to kill finishes untouched.
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/binary_cache.h"
#include "daemon/security/credentials.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/cluster.grpc.pb.h"
#include "proto/jobs.grpc.pb.h"
#include "tests/cluster/cluster_fixture.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::IsSupersetOf;

std::shared_ptr<grpc::ChannelCredentials> BundleCredentials(const std::string& dir) {
  absl::StatusOr<daemon::security::Credentials> creds = daemon::security::Credentials::LoadBundle(dir);
  EXPECT_TRUE(creds.ok()) << creds.status();
  return creds.ok() ? creds->ChannelCredentials() : grpc::InsecureChannelCredentials();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Presents `cert_dir`'s certificate and key while trusting the real cluster
// CA: the server, not the client, is what refuses it.
std::shared_ptr<grpc::ChannelCredentials> PresentingCertificateOf(const std::string& cert_dir) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadAll(TestPki::Get().ca_dir() + "/ca.pem");
  options.pem_cert_chain = ReadAll(cert_dir + "/cert.pem");
  options.pem_private_key = ReadAll(cert_dir + "/key.pem");
  return grpc::SslCredentials(options);
}

// Trusts the cluster CA, presents no certificate at all.
std::shared_ptr<grpc::ChannelCredentials> NoCertificate() {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadAll(TestPki::Get().ca_dir() + "/ca.pem");
  return grpc::SslCredentials(options);
}

// A bundle from a CA the cluster has never seen, with the name and role of
// the tests' own client.
std::string RogueClientBundle() {
  static std::string dir = [] {
    std::string ca = MakeTempDir("rogue-") + "/ca";
    EXPECT_EQ(RunCommand({DaemonPath(), "ca", "init", ca}).code, 0);
    EXPECT_EQ(RunCommand({DaemonPath(), "ca", "issue", ca, "tester", "--role=admin"}).code, 0);
    return ca + "/tester";
  }();
  return dir;
}

// Files in a binary cache directory (temporary upload files included).
std::vector<std::string> ListCache(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) files.push_back(entry.path());
  return files;
}

std::chrono::system_clock::time_point Soon() { return std::chrono::system_clock::now() + std::chrono::seconds(10); }

// A script that, if anything ever ran it, would leave `marker` behind.
struct Script {
  std::string path, marker;
  pb::BinaryId id;
};
Script MarkerScript() {
  Script script;
  std::string dir = MakeTempDir("attack-");
  script.marker = dir + "/owned.txt";
  script.path = dir + "/payload.sh";
  {
    std::ofstream out(script.path);
    out << "#!/bin/sh\nid > " << script.marker << "\n";
  }
  chmod(script.path.c_str(), 0755);
  script.id.set_sha256(daemon::Sha256OfFile(script.path).value());
  script.id.set_size(ReadAll(script.path).size());
  return script;
}

// Uploads and launches `script` on a node as `credentials`; returns the
// status of each call.
std::pair<grpc::Status, grpc::Status> UploadAndLaunch(const std::string& node,
                                                      std::shared_ptr<grpc::ChannelCredentials> credentials,
                                                      const Script& script) {
  auto stub = pb::Node::NewStub(grpc::CreateChannel(node, credentials));
  grpc::Status upload;
  {
    grpc::ClientContext context;
    context.set_deadline(Soon());
    pb::UploadReply reply;
    auto writer = stub->Upload(&context, &reply);
    pb::UploadChunk chunk;
    *chunk.mutable_id() = script.id;
    chunk.set_data(ReadAll(script.path));
    writer->Write(chunk);
    writer->WritesDone();
    upload = writer->Finish();
  }
  grpc::ClientContext context;
  context.set_deadline(Soon());
  pb::LaunchRequest launch;
  launch.set_deployment(1);
  *launch.mutable_binary() = script.id;
  pb::LaunchReply reply;
  return {upload, stub->Launch(&context, launch, &reply)};
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.ok()) << cluster_.Describe(); }

  void ExpectNothingRan(const Script& script) {
    EXPECT_NE(access(script.marker.c_str(), F_OK), 0) << "the attacker's script ran";
    for (size_t i = 0; i < cluster_.size(); ++i) {
      EXPECT_THAT(cluster_.node(i).Launched(), IsEmpty()) << "node " << i << " runs something";
      EXPECT_THAT(ListCache(cluster_.node_cache(i)), IsEmpty()) << "node " << i << " stored an upload";
    }
  }

  Cluster cluster_{ThreeNodeLoopback()};
};

TEST_F(SecurityTest, CallersWithoutAClusterCertificateAreRefusedAndNothingRuns) {
  Script script = MarkerScript();
  for (auto [what, credentials] :
       {std::pair{"plaintext", grpc::InsecureChannelCredentials()}, std::pair{"no certificate", NoCertificate()},
        std::pair{"a rogue CA's certificate", PresentingCertificateOf(RogueClientBundle())}}) {
    SCOPED_TRACE(what);
    auto [upload, launch] = UploadAndLaunch(cluster_.node_addr(0), credentials, script);
    EXPECT_THAT(upload.error_code(), AnyOf(grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::UNAUTHENTICATED))
        << upload.error_message();
    EXPECT_THAT(launch.error_code(), AnyOf(grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::UNAUTHENTICATED))
        << launch.error_message();
  }
  ExpectNothingRan(script);
  // The same script through cdeploy with the rogue bundle: refused before any byte is sent.
  CommandResult r = RunCommand({CdeployPath(), cluster_.bridge_addr(), script.path, "--tls=" + RogueClientBundle()});
  EXPECT_EQ(r.code, 2) << r.output << r.error;
  EXPECT_THAT(r.error, HasSubstr("TLS handshake"));
  EXPECT_THAT(ListCache(cluster_.master_cache()), IsEmpty());
  ExpectNothingRan(script);
}

TEST_F(SecurityTest, OnlyTheMasterDrivesNodes) {
  Script script = MarkerScript();
  TestPki& pki = TestPki::Get();
  for (const std::string& bundle : {pki.Client(), pki.Bundle("admin", "root"), pki.Node("127.0.0.1")}) {
    SCOPED_TRACE(bundle);
    auto [upload, launch] = UploadAndLaunch(cluster_.node_addr(1), BundleCredentials(bundle), script);
    EXPECT_EQ(upload.error_code(), grpc::StatusCode::PERMISSION_DENIED) << upload.error_message();
    EXPECT_EQ(launch.error_code(), grpc::StatusCode::PERMISSION_DENIED) << launch.error_message();
    EXPECT_THAT(launch.error_message(), HasSubstr("Node.Launch is for master identities"));
  }
  ExpectNothingRan(script);
}

// A running deployment survives a client's Kill and a redirecting Attach
// (which used to make the node kill everything it had).
TEST_F(SecurityTest, AClientCannotKillOrDetachOthersDeployments) {
  DeployOptions options;
  options.args = {"tree", "1"};  // three processes that sleep until killed
  options.close_stdin = false;
  std::unique_ptr<Program> run = cluster_.StartDeploy(ScenarioPath(), options);
  EventReader reader(run.get());
  ASSERT_TRUE(reader.ReadUntil([&](const Event&) {
    int up = 0;
    for (const auto& [pid, out] : reader.out) up += out.rfind("os ", 0) == 0 ? 1 : 0;
    return up == 3;
  })) << run->stdout_text()
      << run->stderr_text();
  // Every process, and its monitor, the deployment's zygotes and their spares
  // (a spare made after a launch may still be starting: more may come).
  std::vector<pid_t> launched = cluster_.LaunchedAnywhere();

  auto credentials = BundleCredentials(TestPki::Get().Client());
  for (size_t i = 0; i < cluster_.size(); ++i) {
    auto stub = pb::Node::NewStub(grpc::CreateChannel(cluster_.node_addr(i), credentials));
    for (uint64_t deployment = 0; deployment < 4; ++deployment) {
      grpc::ClientContext context;
      context.set_deadline(Soon());
      pb::KillRequest kill;
      kill.set_deployment(deployment);
      pb::Empty empty;
      EXPECT_EQ(stub->Kill(&context, kill, &empty).error_code(), grpc::StatusCode::PERMISSION_DENIED);
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    pb::AttachRequest attach;
    attach.set_master_addr("127.0.0.1:1");
    auto reader = stub->Attach(&context, attach);
    pb::NodeEvent event;
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
    // A forged verdict would end every channel to a live process: only the master may send one.
    for (uint64_t deployment = 0; deployment < 4; ++deployment) {
      grpc::ClientContext gone_context;
      gone_context.set_deadline(Soon());
      pb::GoneBatch gone;
      gone.set_deployment(deployment);
      gone.add_gone()->set_node_lost(true);
      pb::Empty gone_reply;
      EXPECT_EQ(stub->Gone(&gone_context, gone, &gone_reply).error_code(), grpc::StatusCode::PERMISSION_DENIED);
    }
    // Adopting a file by path is the master's (a node on its machine links the master's copy).
    grpc::ClientContext adopt_context;
    adopt_context.set_deadline(Soon());
    pb::AdoptRequest adopt;
    adopt.mutable_id()->set_sha256(std::string(64, 'a'));
    adopt.set_path("/etc/passwd");
    pb::UploadReply adopt_reply;
    EXPECT_EQ(stub->Adopt(&adopt_context, adopt, &adopt_reply).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_THAT(cluster_.LaunchedAnywhere(), IsSupersetOf(launched)) << "a process was killed";
  run->Signal(SIGINT);  // cdeploy's Ctrl-C: its owner may end it
  EXPECT_EQ(run->Wait().ToString(), "exit code 130") << run->stderr_text();
}

TEST_F(SecurityTest, OnlyNodesSpawnAndOnlyClientsDeploy) {
  auto client = BundleCredentials(TestPki::Get().Client());
  auto master = pb::Master::NewStub(grpc::CreateChannel(cluster_.master_addr(), client));
  grpc::ClientContext spawn_context;
  spawn_context.set_deadline(Soon());
  pb::MasterSpawnRequest spawn;
  pb::SpawnReply reply;
  grpc::Status spawned = master->Spawn(&spawn_context, spawn, &reply);
  EXPECT_EQ(spawned.error_code(), grpc::StatusCode::PERMISSION_DENIED) << spawned.error_message();
  grpc::ClientContext watch_context;
  watch_context.set_deadline(Soon());
  pb::MasterWatchRequest watch;
  pb::GoneBatch answer;
  grpc::Status watched = master->Watch(&watch_context, watch, &answer);
  EXPECT_EQ(watched.error_code(), grpc::StatusCode::PERMISSION_DENIED) << watched.error_message();

  auto node = BundleCredentials(TestPki::Get().Node("127.0.0.1"));
  auto jobs = v1::Jobs::NewStub(grpc::CreateChannel(cluster_.bridge_addr(), node));
  grpc::ClientContext submit_context;
  submit_context.set_deadline(Soon());
  v1::SubmitRequest submit;
  submit.mutable_spec()->mutable_binary()->set_sha256(std::string(64, 'a'));
  submit.mutable_spec()->mutable_binary()->set_size(1);
  v1::Job job;
  grpc::Status submitted = jobs->Submit(&submit_context, submit, &job);
  EXPECT_EQ(submitted.error_code(), grpc::StatusCode::PERMISSION_DENIED) << submitted.error_message();
  EXPECT_THAT(submitted.error_message(), HasSubstr("the caller is node node-127.0.0.1"));
  grpc::ClientContext upload_context;
  upload_context.set_deadline(Soon());
  v1::UploadBinaryResponse uploaded;
  auto upload = jobs->UploadBinary(&upload_context, &uploaded);
  v1::UploadBinaryRequest first;
  *first.mutable_binary() = submit.spec().binary();
  upload->Write(first);
  upload->WritesDone();
  EXPECT_EQ(upload->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ExpectNothingRan(MarkerScript());
}

// The master never runs uploaded code: the root's resources query runs on a
// node, inside a small cgroup leaf of that node's.
TEST_F(SecurityTest, TheResourcesQueryRunsOnANodeInACgroupNeverOnTheMaster) {
  std::string dir = MakeTempDir("query-");
  std::string log = dir + "/runs.txt";
  std::string script = dir + "/who.sh";
  {
    std::ofstream out(script);
    out << "#!/bin/sh\n"
        << "echo \"query=${CONSTELLATION_RESOURCES_QUERY:-no} ppid=$PPID $(grep memory /proc/self/cgroup)\" >> " << log
        << "\n";
  }
  chmod(script.c_str(), 0755);
  DeployOptions options;
  options.check_nothing_left = true;
  std::unique_ptr<Program> run = cluster_.StartDeploy(script, options);
  run->Wait();
  std::vector<std::string> lines = absl::StrSplit(ReadAll(log), '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty()) << "the script never ran\n" << run->stderr_text() << cluster_.Describe();
  bool queried = false;
  for (const std::string& line : lines) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr(absl::StrCat("ppid=", cluster_.master().os_pid(), " "))))
        << "the master ran the uploaded binary";
    if (!absl::StrContains(line, "query=1")) continue;
    queried = true;
    if (absl::StrContains(line, "/constellation-")) {
      EXPECT_THAT(line, HasSubstr("/query-")) << line;
    }
  }
  EXPECT_TRUE(queried) << "no resources query ran:\n" << ReadAll(log);
}

// ---- start-up: secure by default ------------------------------------------------------------------

TEST(SecureByDefault, DaemonsWithoutABundleRefuseToStartAndSayHowToMakeOne) {
  std::string cache = MakeTempDir("nobundle-");
  CommandResult r = RunCommand({DaemonPath(), "127.0.0.1:0", "--cache-dir=" + cache, "--tls=" + cache + "/none"});
  EXPECT_EQ(r.code, 1) << r.output << r.error;
  EXPECT_THAT(r.error, HasSubstr("constellation ca issue"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("listening")));
  // A client certificate is not a node's.
  CommandResult wrong =
      RunCommand({DaemonPath(), "127.0.0.1:0", "--cache-dir=" + cache, "--tls=" + TestPki::Get().Client()});
  EXPECT_EQ(wrong.code, 1);
  EXPECT_THAT(wrong.error, HasSubstr("is a client certificate"));
}

// Deployments never run as root unless the operator says so.
TEST(SecureByDefault, ARootDaemonWithoutRunAsRefusesToStart) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string cache = MakeTempDir("asroot-");
  CommandResult r =
      RunCommand({DaemonPath(), "127.0.0.1:0", "--cache-dir=" + cache, "--tls=" + TestPki::Get().Node("127.0.0.1")});
  EXPECT_EQ(r.code, 1) << r.output << r.error;
  EXPECT_THAT(r.error, HasSubstr("every deployment would run as root"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("listening")));
}

TEST(SecureByDefault, CdeployWithoutABundleSaysHowToMakeOne) {
  std::string home = MakeTempDir("home-");
  CommandResult r = RunCommand({"env", "HOME=" + home, CdeployPath(), "127.0.0.1:1", ScenarioPath()});
  EXPECT_EQ(r.code, 2) << r.output << r.error;
  EXPECT_THAT(r.error, HasSubstr(home + "/.config/constellation/tls"));
  EXPECT_THAT(r.error, HasSubstr("constellation ca issue"));
}

TEST(SecureByDefault, InsecureIsExplicitAndWarns) {
  ClusterOptions options = ThreeNodeLoopback();
  options.insecure = true;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  EXPECT_THAT(cluster.master().stderr_text(), HasSubstr("WARNING: running without TLS"));
  EXPECT_THAT(cluster.node(0).stderr_text(), HasSubstr("WARNING: running without TLS"));
  RunResult r = cluster.Deploy(ScenarioPath(), {"children", "2"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
}

}  // namespace
}  // namespace constellation::testing
