// A node keeps its processes through a master restart (issue 12, item 3): a
// real NodeService on 127.0.0.1:0 (insecure), called as a master would call
// it, launching a real program (testing/node_test_program). The grace is a
// FakeAlarm fired by hand.
#include "daemon/node_service.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/grpc_util.h"
#include "daemon/testing/fake_alarm.h"
#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::FromProto;
using internal::ToProto;

namespace {

std::string ProgramPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "constellation",
                      "/daemon/testing/node_test_program");
}

std::string TempDir() {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(tmp ? tmp : "/tmp", "/node-service-XXXXXX");
  EXPECT_NE(mkdtemp(templ.data()), nullptr);
  return templ;
}

// The master's end of one Attach stream.
struct MasterSide {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<pb::NodeEvent>> reader;
  pb::NodeHello hello;
  std::vector<pb::NodeEvent> events;  // read so far, after the hello

  // Reads until `done` holds for an event; false if the stream ended first.
  bool ReadUntil(const std::function<bool(const pb::NodeEvent&)>& done) {
    pb::NodeEvent event;
    while (reader->Read(&event)) {
      events.push_back(event);
      if (done(event)) return true;
    }
    return false;
  }
  // Drops the stream, as a master that dies does.
  void Drop() {
    context.TryCancel();
    reader->Finish().ok();
  }
};

bool IsOutput(const pb::NodeEvent& e, const std::string& text) {
  return e.has_event() && e.event().has_output() && e.event().output().data().find(text) != std::string::npos;
}

bool IsExit(const pb::NodeEvent& e, const Pid& pid) {
  return e.has_event() && e.event().has_exit() && FromProto(e.event().pid()).value_or(Pid()) == pid;
}

class NodeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    security::Credentials credentials = security::Credentials::Insecure();
    NodeOptions options;
    options.master_grace = absl::Seconds(60);
    auto alarm = std::make_unique<FakeAlarm>();
    alarm_ = alarm.get();
    options.alarm = std::move(alarm);
    options.metrics = &registry_;
    absl::StatusOr<std::unique_ptr<NodeService>> node =
        NodeService::Create(0x7f000001, cache_dir_ = TempDir() + "/node", credentials, std::move(options));
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
    grpc::ServerBuilder builder;
    ConfigureServer(builder);
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", credentials.ServerCredentials(), &port);
    builder.RegisterService(node_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    stub_ = pb::Node::NewStub(NodeChannel(absl::StrCat("127.0.0.1:", port), credentials.ChannelCredentials()));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    node_.reset();  // kills what is left
  }

  // Attaches as a master that stored `resume_after` of `incarnation`, and reads the hello.
  std::unique_ptr<MasterSide> Attach(const std::string& incarnation = "", uint64_t resume_after = 0) {
    auto master = std::make_unique<MasterSide>();
    master->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));  // a hang guard
    pb::AttachRequest request;
    request.set_master_addr("127.0.0.1:1");
    request.set_incarnation(incarnation);
    request.set_resume_after(resume_after);
    master->reader = stub_->Attach(&master->context, request);
    pb::NodeEvent first;
    EXPECT_TRUE(master->reader->Read(&first)) << "no hello";
    EXPECT_EQ(first.seq(), 0u);
    EXPECT_TRUE(first.has_hello());
    EXPECT_FALSE(first.has_event()) << "today's master takes a first message without an event as 'node is up'";
    master->hello = first.hello();
    return master;
  }

  // Launches the test program as a deployment's root; its pid.
  // Launches the test program as a deployment's root, or (`spawned`) as a
  // spawned function's process, whose function the program does not have
  // (it exits 127 once started); its pid.
  Pid Launch(uint64_t deployment, const std::string& mode, bool spawned = false) {
    std::string path = ProgramPath();
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    pb::BinaryId id;
    id.set_sha256(Sha256OfFile(path).value());
    id.set_size(st.st_size);
    EXPECT_TRUE(UploadIfMissing(*stub_, id, path).ok());
    pb::LaunchRequest request;
    request.set_deployment(deployment);
    *request.mutable_binary() = id;
    request.add_argv(path);
    request.add_argv(mode);
    if (spawned) request.mutable_call()->set_function(1);
    request.mutable_resources()->set_mem(256 << 20);
    request.mutable_resources()->set_cpu(0.5);
    grpc::ClientContext context;
    pb::LaunchReply reply;
    grpc::Status status = stub_->Launch(&context, request, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return FromProto(reply.pid()).value_or(Pid());
  }

  grpc::Status Ack(const std::string& incarnation, uint64_t seq) {
    grpc::ClientContext context;
    pb::AckRequest request;
    request.set_incarnation(incarnation);
    request.set_seq(seq);
    pb::Empty empty;
    return stub_->Ack(&context, request, &empty);
  }

  grpc::Status Kill(uint64_t deployment, int signal, const std::vector<Pid>& pids) {
    grpc::ClientContext context;
    pb::KillRequest request;
    request.set_deployment(deployment);
    request.set_signal(signal);
    for (const Pid& pid : pids) *request.add_pids() = ToProto(pid);
    pb::Empty empty;
    return stub_->Kill(&context, request, &empty);
  }

  // The value of the sample `series` (name and labels as rendered) in a scrape now; -1 if absent.
  double Metric(const std::string& series) {
    std::string text = registry_.Render();
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    at += series.size() + 2;
    return std::stod(text.substr(at, text.find('\n', at) - at));
  }

  metrics::Registry registry_;  // outlives node_
  FakeAlarm* alarm_ = nullptr;
  std::string cache_dir_;
  std::unique_ptr<NodeService> node_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<pb::Node::Stub> stub_;
};

TEST_F(NodeServiceTest, TheFirstMessageIsAHelloWithTheIncarnation) {
  std::unique_ptr<MasterSide> master = Attach();
  EXPECT_EQ(master->hello.incarnation(), node_->incarnation());
  EXPECT_EQ(master->hello.incarnation().size(), 32u);
  EXPECT_EQ(master->hello.processes_size(), 0);
  EXPECT_FALSE(alarm_->pending());
}

TEST_F(NodeServiceTest, ANewerAttachEndsTheOlderAtOnce) {
  std::unique_ptr<MasterSide> first = Attach();
  std::unique_ptr<MasterSide> second = Attach();
  pb::NodeEvent event;
  EXPECT_FALSE(first->reader->Read(&event)) << "the older stream is still open";
  EXPECT_TRUE(first->reader->Finish().ok());
  EXPECT_FALSE(alarm_->pending()) << "a replaced stream is no lost master";
}

// The master goes away and comes back within the grace: the process runs on,
// the hello lists it, and only what the master had not stored comes again.
TEST_F(NodeServiceTest, AMasterThatComesBackGetsTheInventoryAndOnlyUnstoredEvents) {
  std::unique_ptr<MasterSide> master = Attach();
  Pid pid = Launch(5, "wait");
  ASSERT_TRUE(master->ReadUntil([](const pb::NodeEvent& e) { return IsOutput(e, "up"); }));
  uint64_t stored = master->events.back().seq();
  ASSERT_GT(stored, 0u);
  master->Drop();
  ASSERT_TRUE(alarm_->WaitPending()) << "the node did not notice its master was gone";
  EXPECT_EQ(alarm_->after(), absl::Seconds(60));
  EXPECT_EQ(node_->agent().live(), 1u) << "killed before the grace";

  // No master: the process ends (SIGTERM to it), and that is kept for the next.
  ASSERT_TRUE(Kill(5, SIGTERM, {pid}).ok());

  std::unique_ptr<MasterSide> back = Attach(node_->incarnation(), stored);
  EXPECT_FALSE(alarm_->pending()) << "the kill is still pending";
  ASSERT_EQ(back->hello.processes_size(), 1);
  const pb::RunningProcess& running = back->hello.processes(0);
  EXPECT_EQ(FromProto(running.pid()).value_or(Pid()), pid);
  EXPECT_EQ(running.deployment(), 5u);
  EXPECT_FALSE(running.has_parent());
  EXPECT_EQ(running.resources().mem(), 256u << 20);
  ASSERT_TRUE(back->ReadUntil([&](const pb::NodeEvent& e) { return IsExit(e, pid); }));
  EXPECT_EQ(back->events.front().seq(), stored + 1) << "events the master stored came again, or some are missing";
  for (size_t i = 1; i < back->events.size(); ++i) EXPECT_EQ(back->events[i].seq(), back->events[i - 1].seq() + 1);
  EXPECT_EQ(back->events.back().event().exit().signal(), SIGTERM);
  uint64_t exit_seq = back->events.back().seq();

  // The exit is stored: the process leaves the inventory; a master with
  // another incarnation gets everything not acked, which is now nothing
  // before the next process's events.
  ASSERT_TRUE(Ack(node_->incarnation(), exit_seq).ok());
  back->Drop();
  std::unique_ptr<MasterSide> fresh = Attach("another", 0);
  EXPECT_EQ(fresh->hello.processes_size(), 0);
  Launch(6, "exit");
  ASSERT_TRUE(fresh->ReadUntil([](const pb::NodeEvent& e) { return e.has_event(); }));
  EXPECT_EQ(fresh->events.front().seq(), exit_seq + 1);
  EXPECT_EQ(fresh->events.front().deployment(), 6u);
}

TEST_F(NodeServiceTest, AMasterOfAnotherIncarnationGetsEverythingNotAcked) {
  std::unique_ptr<MasterSide> master = Attach();
  Launch(5, "exit");
  ASSERT_TRUE(master->ReadUntil([](const pb::NodeEvent& e) { return e.has_event() && e.event().has_exit(); }));
  std::vector<pb::NodeEvent> first = master->events;
  master->Drop();
  std::unique_ptr<MasterSide> again = Attach("", 0);
  ASSERT_EQ(again->hello.processes_size(), 1);
  EXPECT_TRUE(again->hello.processes(0).exited());
  ASSERT_TRUE(again->ReadUntil([](const pb::NodeEvent& e) { return e.has_event() && e.event().has_exit(); }));
  ASSERT_EQ(again->events.size(), first.size());
  for (size_t i = 0; i < first.size(); ++i)
    EXPECT_EQ(again->events[i].SerializeAsString(), first[i].SerializeAsString());
}

TEST_F(NodeServiceTest, PastTheGraceTheNodeKillsAndKeepsTheExitsForTheNextMaster) {
  std::unique_ptr<MasterSide> master = Attach();
  Pid pid = Launch(7, "wait");
  ASSERT_TRUE(master->ReadUntil([](const pb::NodeEvent& e) { return IsOutput(e, "up"); }));
  master->Drop();
  ASSERT_TRUE(alarm_->WaitPending());
  ASSERT_TRUE(alarm_->Fire());
  EXPECT_TRUE(node_->grace().expired());
  std::unique_ptr<MasterSide> late = Attach(node_->incarnation(), master->events.back().seq());
  ASSERT_TRUE(late->ReadUntil([&](const pb::NodeEvent& e) { return IsExit(e, pid); }));
  EXPECT_EQ(late->events.back().event().exit().signal(), SIGKILL);
}

TEST_F(NodeServiceTest, KillRefusesASignalNodesDoNotSendAndAMalformedPid) {
  EXPECT_EQ(Kill(1, SIGSTOP, {}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Kill(1, -3, {}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext context;
  pb::KillRequest request;
  request.add_pids()->set_addr("short");
  pb::Empty empty;
  EXPECT_EQ(stub_->Kill(&context, request, &empty).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Kill with pids signals those alone; deployment 0 means whatever their deployment.
TEST_F(NodeServiceTest, KillWithPidsSignalsThoseAlone) {
  std::unique_ptr<MasterSide> master = Attach();
  Pid a = Launch(8, "wait");
  Pid b = Launch(8, "wait");
  ASSERT_TRUE(
      master->ReadUntil([&, ups = 0](const pb::NodeEvent& e) mutable { return (ups += IsOutput(e, "up")) == 2; }));
  ASSERT_TRUE(Kill(9, SIGTERM, {a}).ok());  // not of deployment 9: nothing
  ASSERT_TRUE(Kill(0, SIGTERM, {a}).ok());
  ASSERT_TRUE(master->ReadUntil([&](const pb::NodeEvent& e) { return IsExit(e, a); }));
  EXPECT_EQ(master->events.back().event().exit().signal(), SIGTERM);
  for (const pb::NodeEvent& e : master->events) EXPECT_FALSE(IsExit(e, b)) << "b was not asked to end";
  ASSERT_TRUE(Kill(8, 0, {}).ok());  // 0: SIGKILL, the whole deployment
  ASSERT_TRUE(master->ReadUntil([&](const pb::NodeEvent& e) { return IsExit(e, b); }));
  EXPECT_EQ(master->events.back().event().exit().signal(), SIGKILL);
}

// A master on this machine hands over its stored copy: the node checks and
// hashes it, links it in, and launches from it; a lying one is refused.
TEST_F(NodeServiceTest, AdoptsTheMastersCopyOnThisMachineAndRefusesALie) {
  std::string dir = TempDir();
  std::string copy = dir + "/master-copy";
  std::ifstream in(ProgramPath(), std::ios::binary);
  std::string program((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(program.empty());
  { std::ofstream(copy, std::ios::binary) << program; }
  ASSERT_EQ(chmod(copy.c_str(), 0500), 0);
  pb::AdoptRequest request;
  request.mutable_id()->set_sha256(Sha256OfFile(copy).value());
  request.mutable_id()->set_size(program.size());
  request.set_path(copy);
  auto has = [&] {
    grpc::ClientContext context;
    pb::HasBinaryReply reply;
    EXPECT_TRUE(stub_->HasBinary(&context, request.id(), &reply).ok());
    EXPECT_EQ(reply.boot_id(), BootId()) << "the master could not tell it shares this machine";
    return reply.present();
  };

  pb::AdoptRequest lie = request;
  lie.mutable_id()->set_sha256(std::string(64, 'a'));
  grpc::ClientContext lie_context;
  pb::UploadReply reply;
  EXPECT_EQ(stub_->Adopt(&lie_context, lie, &reply).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  ASSERT_FALSE(has());
  grpc::ClientContext context;
  grpc::Status adopted = stub_->Adopt(&context, request, &reply);
  ASSERT_TRUE(adopted.ok()) << adopted.error_message();
  EXPECT_TRUE(has());
}

// A master whose own upload failed cancels the stream it feeds the node: the
// node keeps nothing, not even with every byte received, nor a temporary file.
TEST_F(NodeServiceTest, ACancelledUploadLeavesNothing) {
  const std::string bytes = "hello\n";
  pb::UploadChunk chunk;
  chunk.mutable_id()->set_sha256("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  chunk.mutable_id()->set_size(bytes.size());
  chunk.set_data(bytes);
  {
    grpc::ClientContext context;
    pb::UploadReply reply;
    std::unique_ptr<grpc::ClientWriter<pb::UploadChunk>> writer = stub_->Upload(&context, &reply);
    ASSERT_TRUE(writer->Write(chunk));
    context.TryCancel();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  grpc::ClientContext context;
  pb::HasBinaryReply has;
  ASSERT_TRUE(stub_->HasBinary(&context, chunk.id(), &has).ok());
  EXPECT_FALSE(has.present());
  server_->Shutdown(std::chrono::system_clock::now());  // the handler has returned
  server_.reset();
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(cache_dir_)) {
    ADD_FAILURE() << "left in the cache: " << entry.path();
    ++entries;
  }
  EXPECT_EQ(entries, 0);
}

// A deployment's first spawned function here starts its zygote
// (node_zygotes.h), which forks the next; the master's SIGKILL for the whole
// deployment, which it also sends once the deployment has ended, ends it.
TEST_F(NodeServiceTest, ASpawnedFunctionsLaunchStartsTheDeploymentsZygoteAndKillingTheDeploymentEndsIt) {
  std::unique_ptr<MasterSide> master = Attach();
  Pid root = Launch(5, "wait");
  ASSERT_TRUE(master->ReadUntil([](const pb::NodeEvent& e) { return IsOutput(e, "up"); }));
  EXPECT_EQ(node_->zygotes().os_pid(5), 0) << "a root alone starts none";
  Pid executed = Launch(5, "wait", /*spawned=*/true);
  pid_t zygote = node_->zygotes().os_pid(5);
  ASSERT_GT(zygote, 0);
  EXPECT_EQ(kill(zygote, 0), 0);
  EXPECT_EQ(Metric("constellation_node_processes_forked_total"), 0);
  EXPECT_EQ(Metric("constellation_node_zygotes"), 1);
  Pid forked = Launch(5, "wait", /*spawned=*/true);
  EXPECT_EQ(Metric("constellation_node_processes_forked_total"), 1);
  EXPECT_EQ(Metric("constellation_node_processes_spawned_total"), 3);
  // Neither finds its function: both exit (127), in either order.
  std::set<Pid> running = {executed, forked};
  ASSERT_TRUE(master->ReadUntil([&](const pb::NodeEvent& e) {
    if (e.has_event() && e.event().has_exit()) running.erase(FromProto(e.event().pid()).value_or(Pid()));
    return running.empty();
  }));
  ASSERT_TRUE(Kill(5, SIGTERM, {root}).ok());
  ASSERT_TRUE(master->ReadUntil([&](const pb::NodeEvent& e) { return IsExit(e, root); }));
  EXPECT_EQ(node_->zygotes().os_pid(5), zygote) << "kept while the deployment may spawn here again";
  ASSERT_TRUE(Kill(5, SIGKILL, {}).ok());
  EXPECT_EQ(node_->zygotes().os_pid(5), 0);
  EXPECT_EQ(Metric("constellation_node_zygotes"), 0);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, zygote, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 10000), 1) << "the zygote outlived its deployment";
    close(pidfd);
  }
}

TEST(NodeServiceStart, AZygoteSettingNotUnderstoodIsRefused) {
  setenv("CONSTELLATION_ZYGOTE", "sometimes", 1);
  absl::StatusOr<std::unique_ptr<NodeService>> node =
      NodeService::Create(0x7f000001, TempDir() + "/node", security::Credentials::Insecure());
  unsetenv("CONSTELLATION_ZYGOTE");
  ASSERT_FALSE(node.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(node.status())) << node.status();
  EXPECT_NE(node.status().message().find("CONSTELLATION_ZYGOTE=sometimes"), std::string::npos) << node.status();
}

// What the node counts (metrics/node_metrics.h), read back from its registry.
TEST_F(NodeServiceTest, CountsLaunchesExitsUploadsAndCacheLookups) {
  std::unique_ptr<MasterSide> master = Attach();
  EXPECT_EQ(Metric("constellation_node_processes_spawned_total"), 0);
  EXPECT_EQ(Metric("constellation_node_uploaded_bytes_total"), 0);
  Pid failing = Launch(5, "exit");  // uploads the program first (a cache miss), exits 3
  ASSERT_TRUE(master->ReadUntil([&](const pb::NodeEvent& e) { return IsExit(e, failing); }));
  Pid waiting = Launch(5, "wait");  // cached now: a hit
  ASSERT_TRUE(master->ReadUntil([](const pb::NodeEvent& e) { return IsOutput(e, "up"); }));
  EXPECT_EQ(Metric("constellation_node_processes_running"), 1);
  ASSERT_TRUE(Kill(5, SIGTERM, {waiting}).ok());
  ASSERT_TRUE(master->ReadUntil([&](const pb::NodeEvent& e) { return IsExit(e, waiting); }));

  struct stat st;
  ASSERT_EQ(stat(ProgramPath().c_str(), &st), 0);
  EXPECT_EQ(Metric("constellation_node_processes_spawned_total"), 2);
  EXPECT_EQ(Metric("constellation_node_spawn_latency_seconds_count"), 2);
  EXPECT_GT(Metric("constellation_node_spawn_latency_seconds_sum"), 0);
  EXPECT_EQ(Metric("constellation_node_processes_failed_total{reason=\"exit_code\"}"), 1);
  EXPECT_EQ(Metric("constellation_node_processes_failed_total{reason=\"signal\"}"), 1);
  EXPECT_EQ(Metric("constellation_node_processes_failed_total{reason=\"oom\"}"), 0);
  EXPECT_EQ(Metric("constellation_node_uploaded_bytes_total"), st.st_size);
  EXPECT_EQ(Metric("constellation_node_binary_cache_misses_total"), 1);
  EXPECT_EQ(Metric("constellation_node_binary_cache_hits_total"), 1);
}

}  // namespace
}  // namespace constellation::daemon
