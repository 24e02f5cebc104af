// Nodes that join (Master.Join) and leave: the master attaches to them as to
// the nodes of nodes.toml, places processes there, drops them when they leave
// or stay away, refuses clashes and takes them back after a restart. The
// JobManager fixture's master with fake nodes n1:1, n2:1 (configured) and
// fakes made for every node that joins.
#include "daemon/master/job_manager_fixture.h"

namespace constellation::daemon::master {
namespace {

using ::testing::HasSubstr;

const std::string kN3 = "n3:1";
const std::string kN3Who = "spiffe://constellation/node/n3";
const Resources kBig{4ull << 30, 4};  // more than n1 and n2 have: what needs it runs on n3

class NodeJoinTest : public JobManagerTest {
 protected:
  // n3 joins and comes up.
  FakeNodeClient* JoinN3() {
    absl::Status joined = nodes_->Join(kN3, kBig, kN3Who);
    EXPECT_TRUE(joined.ok()) << joined;
    FakeNodeClient* n3 = Joined(kN3);
    EXPECT_NE(n3, nullptr);
    if (n3 == nullptr) return nullptr;
    EXPECT_TRUE(n3->WaitFor([&] { return nodes_->state(kN3) == NodeState::kUp; }));
    return n3;
  }
  std::map<std::string, v1::NodeInfo> Listed() {
    std::map<std::string, v1::NodeInfo> out;
    v1::ListNodesResponse listed = jobs_->ListNodes();
    for (const v1::NodeInfo& node : listed.nodes()) out[node.addr()] = node;
    return out;
  }
};

TEST_F(NodeJoinTest, AJoinedNodeIsAttachedAndListedWithWhereItCameFrom) {
  WaitUp();
  FakeNodeClient* n3 = JoinN3();
  ASSERT_NE(n3, nullptr);
  EXPECT_EQ(n3->attaches()[0].master_addr(), "master:1");
  std::map<std::string, v1::NodeInfo> nodes = Listed();
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes["n1:1"].source(), "config");
  EXPECT_EQ(nodes[kN3].source(), "joined");
  EXPECT_EQ(nodes[kN3].state(), "up");
  EXPECT_EQ(nodes[kN3].capacity().mem(), 4ull << 30);
  EXPECT_EQ(nodes[kN3].capacity().cpu(), 4);
  EXPECT_EQ(nodes[kN3].free().mem(), 4ull << 30);
}

TEST_F(NodeJoinTest, ProcessesArePlacedOnAJoinedNode) {
  WaitUp();
  // Before n3 joins nothing could ever hold it.
  EXPECT_TRUE(absl::IsResourceExhausted(jobs_->Submit(Spec(Resources{3ull << 30, 3}), kAnn).status()));
  FakeNodeClient* n3 = JoinN3();
  ASSERT_NE(n3, nullptr);
  absl::StatusOr<v1::Job> job = jobs_->Submit(Spec(Resources{3ull << 30, 3}), kAnn);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_RUNNING));
  ASSERT_EQ(n3->launches().size(), 1u);
  EXPECT_EQ(n3->uploads(), 1);
  EXPECT_EQ(Listed()[kN3].processes(), 1u);
  absl::StatusOr<v1::Job> running = jobs_->Get(job->id(), kAnn);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->processes(0).node(), kN3);
  n3->Push(Exit(std::stoull(job->id()), running->processes(0).pid(), 1, 0));
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_SUCCEEDED));
}

TEST_F(NodeJoinTest, AJoinAtAnAddressThatIsUpIsRefused) {
  WaitUp();
  ASSERT_NE(JoinN3(), nullptr);
  EXPECT_TRUE(absl::IsAlreadyExists(nodes_->Join(kN3, kBig, "spiffe://constellation/node/impostor")));
  EXPECT_TRUE(absl::IsAlreadyExists(nodes_->Join("n1:1", kBig, kN3Who))) << "a configured node that is up";
  EXPECT_EQ(Listed()[kN3].capacity().mem(), 4ull << 30) << "the refused join changed nothing";
}

TEST_F(NodeJoinTest, ANodeThatLeavesIsDroppedAndItsProcessesReported) {
  WaitUp();
  FakeNodeClient* n3 = JoinN3();
  ASSERT_NE(n3, nullptr);
  absl::StatusOr<v1::Job> job = jobs_->Submit(Spec(Resources{3ull << 30, 3}), kAnn);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_RUNNING));
  // Only the identity that joined it may make it leave; configured nodes never do.
  EXPECT_TRUE(absl::IsPermissionDenied(nodes_->Leave(kN3, "spiffe://constellation/node/other")));
  EXPECT_TRUE(absl::IsFailedPrecondition(nodes_->Leave("n1:1", kN3Who)));
  EXPECT_TRUE(absl::IsNotFound(nodes_->Leave("n9:1", kN3Who)));
  ASSERT_TRUE(nodes_->Leave(kN3, kN3Who).ok());
  EXPECT_EQ(Listed().count(kN3), 0u);
  EXPECT_EQ(nodes_->addrs(), (std::vector<std::string>{"n1:1", "n2:1"}));
  EXPECT_FALSE(placement_->HasNode(kN3));
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_FAILED));
  EXPECT_THAT(jobs_->Get(job->id(), kAnn)->reason(), HasSubstr("left the cluster"));
  EXPECT_TRUE(absl::IsNotFound(nodes_->Leave(kN3, kN3Who))) << "gone already";
  // It may come back, and is dialled again.
  ASSERT_TRUE(nodes_->Join(kN3, Resources{2ull << 30, 2}, kN3Who).ok());
  ASSERT_TRUE(n3->WaitFor([&] { return nodes_->state(kN3) == NodeState::kUp; }));
  EXPECT_EQ(n3->attaches().size(), 2u);
  EXPECT_EQ(Listed()[kN3].capacity().mem(), 2ull << 30) << "its new capacity";
}

TEST_F(NodeJoinTest, ALostJoinedNodeIsHandledAsAConfiguredOneAndMayJoinAgain) {
  WaitUp();
  FakeNodeClient* n3 = JoinN3();
  ASSERT_NE(n3, nullptr);
  absl::StatusOr<v1::Job> job = jobs_->Submit(Spec(Resources{3ull << 30, 3}), kAnn);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_RUNNING));
  n3->SetAttachError(absl::UnavailableError("connection refused"));
  n3->End(absl::UnavailableError("keepalive timeout"));
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_FAILED));
  EXPECT_THAT(jobs_->Get(job->id(), kAnn)->reason(), HasSubstr("was lost"));
  EXPECT_NE(Listed()[kN3].state(), "up");
  EXPECT_EQ(Listed()[kN3].source(), "joined") << "still listed, retried like a configured node";
  // It joins again (the join is accepted: it is not up) and is attached.
  n3->SetAttachError(absl::OkStatus());
  ASSERT_TRUE(nodes_->Join(kN3, kBig, kN3Who).ok());
  ASSERT_TRUE(n3->WaitFor([&] { return nodes_->state(kN3) == NodeState::kUp; }));
}

// The master restarts while a process runs on a joined node: the new master
// knows nothing of the node until it joins again, then takes the process back.
TEST_F(NodeJoinTest, AJoinedNodeThatJoinsARestartedMasterKeepsItsProcesses) {
  WaitUp();
  FakeNodeClient* n3 = JoinN3();
  ASSERT_NE(n3, nullptr);
  absl::StatusOr<v1::Job> job = jobs_->Submit(Spec(Resources{3ull << 30, 3}), kAnn);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_RUNNING));
  absl::StatusOr<v1::Job> running = jobs_->Get(job->id(), kAnn);
  ASSERT_TRUE(running.ok());
  uint64_t id = std::stoull(job->id());
  pb::Pid root = running->processes(0).pid();
  n3->Push(Output(id, root, 1, "before"));
  ASSERT_TRUE(n3->WaitFor([&] { return !n3->acks().empty(); }));
  StopMaster();

  pb::NodeHello hello;
  pb::RunningProcess* process = hello.add_processes();
  process->set_deployment(id);
  *process->mutable_pid() = root;
  *process->mutable_resources() = running->processes(0).resources();
  {
    std::lock_guard<std::mutex> lock(joined_mu_);
    joined_hellos_[kN3] = hello;
  }
  StartMaster();
  WaitUp();
  EXPECT_EQ(Listed().count(kN3), 0u) << "not in nodes.toml: unknown until it joins";
  FakeNodeClient* again = JoinN3();
  ASSERT_NE(again, nullptr);
  ASSERT_EQ(again->attaches().size(), 1u);
  EXPECT_EQ(again->attaches()[0].resume_after(), 1u) << "what the first master stored of it";
  again->Push(Output(id, root, 2, "after"));
  again->Push(Exit(id, root, 3, 0));
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_SUCCEEDED));
  EXPECT_TRUE(again->kills().empty());
  EXPECT_EQ(Listed()[kN3].processes(), 0u);
}

// NodeSet alone: the bounds, and a joined node that never comes up.
class NullHandler : public NodeEventHandler {
 public:
  pb::AttachRequest AttachRequestFor(const std::string&) override { return {}; }
  void OnNodeUp(const std::string&, const pb::NodeHello&) override {}
  void OnNodeEvent(const std::string&, const std::string&, const pb::NodeEvent&) override {}
  void OnNodeDown(const std::string&, const absl::Status&) override {}
};

std::unique_ptr<NodeClient> Unreachable(const std::string& addr) {
  auto node = std::make_unique<FakeNodeClient>(addr);
  node->attach_error = absl::UnavailableError("connection refused");
  return node;
}

TEST(NodeSetJoinTest, JoinsPastTheBoundAreRefused) {
  NodeSet::Options options;
  options.make_client = Unreachable;
  options.max_nodes = 3;
  std::vector<NodeSpec> configured;
  configured.push_back({std::make_unique<FakeNodeClient>("n1:1"), Resources{1 << 30, 1}});
  NodeSet nodes(std::move(configured), options);
  EXPECT_TRUE(nodes.Join("a:1", Resources{1 << 30, 1}, "").ok());
  EXPECT_TRUE(nodes.Join("b:1", Resources{1 << 30, 1}, "").ok());
  absl::Status refused = nodes.Join("c:1", Resources{1 << 30, 1}, "");
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_EQ(nodes.addrs().size(), 3u);
  // One leaves: there is room again.
  EXPECT_TRUE(nodes.Leave("a:1", "").ok());
  EXPECT_TRUE(nodes.Join("c:1", Resources{1 << 30, 1}, "").ok());
}

TEST(NodeSetJoinTest, AMasterWithoutAClientFactoryTakesNoJoins) {
  NodeSet nodes({}, NodeSet::Options{});
  EXPECT_TRUE(absl::IsFailedPrecondition(nodes.Join("a:1", Resources{1 << 30, 1}, "")));
}

TEST(NodeSetJoinTest, AJoinedNodeThatNeverComesUpIsDroppedAndMayJoinAgain) {
  NodeSet::Options options;
  options.make_client = Unreachable;
  options.retry = absl::Milliseconds(1);
  options.forget_after = absl::Milliseconds(20);
  NodeSet nodes({}, options);
  NullHandler handler;
  nodes.Start(&handler);
  ASSERT_TRUE(nodes.Join("a:1", Resources{1 << 30, 1}, "").ok());
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!nodes.addrs().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(nodes.addrs().empty()) << "dropped after forget_after";
  EXPECT_TRUE(nodes.Join("a:1", Resources{1 << 30, 1}, "").ok());
  EXPECT_EQ(nodes.addrs().size(), 1u);
  nodes.Stop();
}

}  // namespace
}  // namespace constellation::daemon::master
