// JobManager's verdicts on processes that are gone: the broadcast to the
// nodes of a job (Node.Gone, through GoneBroadcast) and Master.Watch's
// answers, with fake nodes and a fake clock.
#include "daemon/master/job_manager_fixture.h"

namespace constellation::daemon::master {

using internal::FromProto;
using internal::ToProto;
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class JobVerdictsTest : public JobManagerTest {
 protected:
  // A root on n1 (only n1 holds it) and a child on n2 (only n2 has room left).
  void StartTwo() {
    WaitUp();
    auto [job, node] = SubmitRunning(Spec(Resources{1536ull << 20, 1.5}));
    ASSERT_EQ(node, n1_);
    id_ = std::stoull(job.id());
    job_ = job.id();
    root_ = *FromProto(job.processes(0).pid());
    pb::SpawnRequest request;
    *request.mutable_parent() = ToProto(root_);
    *request.mutable_resources() = ToProto(Resources{768 << 20, 0.75});
    absl::StatusOr<Pid> child = jobs_->Spawn(id_, request);
    ASSERT_TRUE(child.ok()) << child.status();
    ASSERT_EQ(child->ip_string(), "10.0.0.2");
    child_ = *child;
  }
  // What n1 has been told of the child.
  bool N1Told(const std::string& why) {
    return n1_->WaitFor([&] {
      std::vector<std::string> told = n1_->gone_pids();
      std::string line = absl::StrCat(child_.ip_string(), ":", child_.port(), " ", why);
      return std::find(told.begin(), told.end(), line) != told.end();
    });
  }

  uint64_t id_ = 0;
  std::string job_;
  Pid root_, child_;
};

// The bound: a node-lost verdict reaches the processes' nodes within
// a second. The master sends it as it decides it: no time passes on its clock.
TEST_F(JobVerdictsTest, ANodeLostVerdictGoesToTheOtherNodesAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartTwo());
  absl::Time verdict = timers_->Now();
  n2_->End(absl::UnavailableError("keepalive failed"));
  ASSERT_TRUE(N1Told("node_lost"));
  EXPECT_EQ(timers_->Now(), verdict) << "sent without waiting for a timer";
  EXPECT_THAT(n2_->gone_batches(), IsEmpty()) << "the lost node is sent nothing";
  absl::StatusOr<pb::GoneBatch> answer = jobs_->Watch(id_, {child_, root_});
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->gone_size(), 1) << "the root is alive: left out";
  EXPECT_TRUE(answer->gone(0).node_lost());
  EXPECT_EQ(*FromProto(answer->gone(0).pid()), child_);
}

TEST_F(JobVerdictsTest, AnExitGoesToTheNodesThatStillRunProcessesOfTheJob) {
  ASSERT_NO_FATAL_FAILURE(StartTwo());
  n2_->Push(Exit(id_, ToProto(child_), 1, 3));
  ASSERT_TRUE(N1Told("exit"));
  std::vector<pb::GoneBatch> batches = n1_->gone_batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].deployment(), id_);
  EXPECT_EQ(batches[0].gone(0).exit().code(), 3);
  EXPECT_THAT(n2_->gone_batches(), IsEmpty()) << "n2 runs nothing of the job any more";
  // The root's exit then ends the job: nobody is left to tell.
  n1_->Push(Exit(id_, ToProto(root_), 1, 0));
  ASSERT_TRUE(WaitState(job_, v1::JOB_STATE_FAILED));
  EXPECT_EQ(n1_->gone_batches().size(), 1u);
  EXPECT_EQ(gone_->queued(), 0u);
}

TEST_F(JobVerdictsTest, WatchSaysWhatIsGoneAndLeavesTheLivingOut) {
  ASSERT_NO_FATAL_FAILURE(StartTwo());
  n2_->Push(Exit(id_, ToProto(child_), 1, 3));
  ASSERT_TRUE(N1Told("exit"));
  Pid stranger = Pid::FromIpv4(0x0a000002, 20999, 5);
  absl::StatusOr<pb::GoneBatch> answer = jobs_->Watch(id_, {root_, child_, stranger});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->deployment(), id_);
  ASSERT_EQ(answer->gone_size(), 2);
  EXPECT_EQ(*FromProto(answer->gone(0).pid()), child_);
  EXPECT_EQ(answer->gone(0).exit().code(), 3);
  EXPECT_EQ(*FromProto(answer->gone(1).pid()), stranger);
  EXPECT_TRUE(answer->gone(1).no_process());

  absl::StatusOr<pb::GoneBatch> other = jobs_->Watch(id_ + 100, {root_});
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->gone_size(), 1);
  EXPECT_TRUE(other->gone(0).no_process()) << "a job that is not: no process of it";

  std::vector<Pid> too_many(JobManager::kMaxWatch + 1, root_);
  EXPECT_TRUE(absl::IsInvalidArgument(jobs_->Watch(id_, too_many).status()));
}

TEST_F(JobVerdictsTest, ARestartedMasterAnswersFromTheStore) {
  ASSERT_NO_FATAL_FAILURE(StartTwo());
  n2_->Push(Exit(id_, ToProto(child_), 1, 3));
  ASSERT_TRUE(N1Told("exit"));
  ASSERT_TRUE(n2_->WaitFor([&] { return !n2_->acks().empty(); }));
  pb::NodeEvent root_event;
  StopMaster();
  pb::NodeHello hello;
  pb::RunningProcess* running = hello.add_processes();
  running->set_deployment(id_);
  *running->mutable_pid() = ToProto(root_);
  *running->mutable_resources() = ToProto(Resources{1536ull << 20, 1.5});
  StartMaster(hello, pb::NodeHello());
  WaitUp();
  absl::StatusOr<pb::GoneBatch> answer = jobs_->Watch(id_, {root_, child_});
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->gone_size(), 1);
  EXPECT_EQ(answer->gone(0).exit().code(), 3);
  EXPECT_FALSE(answer->gone(0).no_process());
}

// After a restart, a node that does not come back within the grace is lost:
// the node that did come back hears it.
TEST_F(JobVerdictsTest, ANodeThatDoesNotComeBackAfterARestartIsDeclaredLostToTheOthers) {
  ASSERT_NO_FATAL_FAILURE(StartTwo());
  StopMaster();
  pb::NodeHello hello;
  pb::RunningProcess* running = hello.add_processes();
  running->set_deployment(id_);
  *running->mutable_pid() = ToProto(root_);
  *running->mutable_resources() = ToProto(Resources{1536ull << 20, 1.5});
  StartMaster(hello, pb::NodeHello(), "n2:1");
  ASSERT_TRUE(n1_->WaitFor([&] { return nodes_->state("n1:1") == NodeState::kUp; }));
  absl::StatusOr<pb::GoneBatch> before = jobs_->Watch(id_, {child_});
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->gone_size(), 0) << "within the grace its node may come back";
  timers_->Advance(absl::Seconds(60));
  ASSERT_TRUE(N1Told("node_lost"));
}

}  // namespace
}  // namespace constellation::daemon::master
