// JobManager with fake nodes, a real store in a temporary directory and a
// fake clock: submission, ordering, cancel, node loss and master restarts.
#include "daemon/master/job_manager_fixture.h"

namespace constellation::daemon::master {

using internal::ToProto;

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(JobManagerTest, ARootThatExitsZeroSucceedsWithItsOutputInOrder) {
  WaitUp();
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  uint64_t id = std::stoull(job.id());
  const pb::Pid& root = job.processes(0).pid();
  node->Push(Output(id, root, 1, "hello"));
  node->Push(Exit(id, root, 2, 0));
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_SUCCEEDED));
  EXPECT_THAT(Log(job.id()), ElementsAre("state JOB_STATE_PENDING", "state JOB_STATE_RUNNING", "20000 out hello",
                                         "20000 exit 0", "state JOB_STATE_SUCCEEDED"));
  absl::StatusOr<v1::Job> done = jobs_->Get(job.id(), kAnn);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->exit_code(), 0);
  EXPECT_EQ(done->processes(0).state(), v1::PROCESS_STATE_EXITED);
  // The node hears that its events are stored.
  EXPECT_TRUE(node->WaitFor([&] { return !node->acks().empty() && node->acks().back().seq() == 2; }));
  EXPECT_EQ(node->uploads(), 1) << "the binary went to the root's node once";
  ASSERT_EQ(node->launches().size(), 1u);
  EXPECT_EQ(node->launches()[0].secret().size(), 32u);
}

TEST_F(JobManagerTest, AChildsEventsWaitForItsSpawnLine) {
  WaitUp();
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  uint64_t id = std::stoull(job.id());
  pb::Pid root = job.processes(0).pid();
  // The child's output reaches the master before the launch that made it returns.
  FakeNodeClient* other = node == n1_ ? n2_ : n1_;
  pb::SpawnRequest request;
  *request.mutable_parent() = root;
  *request.mutable_resources() = ToProto(Resources{64 << 20, 0.1});
  request.set_wait(true);
  absl::StatusOr<Pid> child = jobs_->Spawn(id, request);
  ASSERT_TRUE(child.ok()) << child.status();
  FakeNodeClient* child_node = child->ip_string() == "10.0.0.1" ? n1_ : n2_;
  (void)other;
  child_node->Push(Output(id, ToProto(*child), 1, "from the child"));
  child_node->Push(Exit(id, ToProto(*child), 2, 3));
  node->Push(Exit(id, root, node == child_node ? 3 : 1, 0));
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_FAILED));
  std::vector<std::string> log = Log(job.id());
  std::string c = absl::StrCat(child->port());
  EXPECT_THAT(log, ::testing::Contains(absl::StrCat("20000 spawn ", c)));
  auto at = [&](const std::string& line) { return std::find(log.begin(), log.end(), line) - log.begin(); };
  EXPECT_LT(at(absl::StrCat("20000 spawn ", c)), at(absl::StrCat(c, " out from the child")));
  absl::StatusOr<v1::Job> done = jobs_->Get(job.id(), kAnn);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->exit_code(), 3);
  EXPECT_THAT(done->reason(), HasSubstr("exited: 3"));
  EXPECT_EQ(done->processes_size(), 2);
}

// Once a job is over, every node that ran a process of it hears so (a
// SIGKILL for the whole deployment, which has nothing left to kill): its
// zygote there goes (daemon/node_zygotes.h).
TEST_F(JobManagerTest, TheNodesThatRanAJobAreToldWhenItEnds) {
  WaitUp();
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  uint64_t id = std::stoull(job.id());
  pb::Pid root = job.processes(0).pid();
  pb::SpawnRequest request;
  *request.mutable_parent() = root;
  *request.mutable_resources() = ToProto(Resources{64 << 20, 0.1});
  request.set_wait(true);
  absl::StatusOr<Pid> child = jobs_->Spawn(id, request);
  ASSERT_TRUE(child.ok()) << child.status();
  FakeNodeClient* child_node = child->ip_string() == "10.0.0.1" ? n1_ : n2_;
  child_node->Push(Exit(id, ToProto(*child), 1, 0));
  node->Push(Exit(id, root, node == child_node ? 2 : 1, 0));
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_SUCCEEDED));
  timers_->Advance(absl::ZeroDuration());  // the word goes out after the job's lock
  for (FakeNodeClient* ran : {node, child_node}) {
    ASSERT_TRUE(ran->WaitFor([&] { return !ran->kills().empty(); }));
    pb::KillRequest kill = ran->kills().back();  // kills() is a copy
    EXPECT_EQ(kill.deployment(), id);
    EXPECT_EQ(kill.signal(), SIGKILL);
    EXPECT_EQ(kill.pids_size(), 0);
  }
  EXPECT_EQ(node->kills().size(), 1u) << "once per node";
}

TEST_F(JobManagerTest, EarlyEventsOfAChildBeingLaunchedAreHeldThenShownAfterItsSpawnLine) {
  WaitUp();
  auto [id, root] = RootOnN1();
  ASSERT_NE(id, 0u);
  // n2 will launch the child on port 20000 of 10.0.0.2: its output arrives first.
  pb::Pid future = ToProto(Pid::FromIpv4(0x0a000002, 20000, 1));
  n2_->Push(Output(id, future, 1, "early"));
  ASSERT_TRUE(n2_->WaitIdle());  // the master has it, and holds it
  absl::StatusOr<Pid> child = jobs_->Spawn(id, SpawnOf(root, Resources{768 << 20, 0.5}));
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_EQ(ToProto(*child).SerializeAsString(), future.SerializeAsString());
  store_->Flush().IgnoreError();
  EXPECT_THAT(Log(absl::StrCat(id)), ElementsAre("state JOB_STATE_PENDING", "state JOB_STATE_RUNNING",
                                                 "20000 spawn 20000", "20000 out early"));
  // n2's ack never passed the held event; now that it is stored it may.
  EXPECT_TRUE(n2_->WaitFor([&] { return !n2_->acks().empty() && n2_->acks().back().seq() == 1; }));
}

TEST_F(JobManagerTest, AChildThatSpawnsBeforeItsLaunchReturnsWaitsForIt) {
  WaitUp();
  auto [id, root] = RootOnN1();
  ASSERT_NE(id, 0u);
  // n2 starts the child (port 20000 of 10.0.0.2) but is slow to answer the
  // Launch; the child, already running, asks for a grandchild meanwhile.
  n2_->hold_launch = true;
  absl::StatusOr<Pid> child;
  std::thread launching([&] { child = jobs_->Spawn(id, SpawnOf(root, Resources{768 << 20, 0.75})); });
  EXPECT_TRUE(n2_->WaitFor([&] { return n2_->held_launches() == 1; }));
  pb::Pid future = ToProto(Pid::FromIpv4(0x0a000002, 20000, 1));
  absl::StatusOr<Pid> grandchild;
  std::thread spawning([&] { grandchild = jobs_->Spawn(id, SpawnOf(future, Resources{256 << 20, 0.25})); });
  // It waits for the launch in flight rather than calling its parent unknown.
  EXPECT_TRUE(n2_->WaitFor([&] { return jobs_->SpawnsWaitingForLaunches() == 1; }));
  n2_->ReleaseLaunches();
  launching.join();
  spawning.join();
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(ToProto(*child).SerializeAsString(), future.SerializeAsString());
  ASSERT_TRUE(grandchild.ok()) << grandchild.status();
  // A parent no launch in flight can be is still refused at once.
  pb::Pid stranger = ToProto(Pid::FromIpv4(0x0a000002, 29999, 1));
  EXPECT_TRUE(absl::IsFailedPrecondition(jobs_->Spawn(id, SpawnOf(stranger, Resources{256 << 20, 0.25})).status()));
  EXPECT_EQ(jobs_->SpawnsWaitingForLaunches(), 0);
}

TEST_F(JobManagerTest, AnUnknownParentWaitsOnlyForTheLaunchesInFlightWhenItAsked) {
  WaitUp();
  auto [id, root] = RootOnN1();
  ASSERT_NE(id, 0u);
  n1_->hold_launch = true;
  n2_->hold_launch = true;
  absl::StatusOr<Pid> first, later;
  std::thread launching_first([&] { first = jobs_->Spawn(id, SpawnOf(root, Resources{768 << 20, 0.5})); });
  EXPECT_TRUE(n2_->WaitFor([&] { return n2_->held_launches() == 1; }));  // only n2 has room
  // A parent no launch will produce: it waits for the first launch only.
  std::atomic<bool> answered{false};
  absl::StatusOr<Pid> stranger;
  std::thread asking([&] {
    stranger = jobs_->Spawn(id, SpawnOf(ToProto(Pid::FromIpv4(0x0a000002, 29999, 1)), Resources{1 << 20, 0.1}));
    answered = true;
  });
  EXPECT_TRUE(n2_->WaitFor([&] { return jobs_->SpawnsWaitingForLaunches() == 1; }));
  std::thread launching_later([&] { later = jobs_->Spawn(id, SpawnOf(root, Resources{384 << 20, 0.25})); });
  EXPECT_TRUE(n1_->WaitFor([&] { return n1_->held_launches() == 1; }));  // only n1 has room
  n2_->ReleaseLaunches();
  EXPECT_TRUE(n2_->WaitFor([&] { return answered.load(); })) << "kept waiting for a launch begun after it asked";
  n1_->ReleaseLaunches();
  launching_first.join();
  asking.join();
  launching_later.join();
  EXPECT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(later.ok()) << later.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(stranger.status())) << stranger.status();
}

TEST_F(JobManagerTest, AChildThatExitedBeforeItsLaunchReturnedIsStoredAsExited) {
  WaitUp();
  auto [id, root] = RootOnN1();
  ASSERT_NE(id, 0u);
  const std::string job = absl::StrCat(id);
  // n2 will launch the child on port 20000 of 10.0.0.2; it prints and exits
  // before the master hears that the launch succeeded.
  pb::Pid future = ToProto(Pid::FromIpv4(0x0a000002, 20000, 1));
  n2_->Push(Output(id, future, 1, "quick"));
  n2_->Push(Exit(id, future, 2, 4));
  ASSERT_TRUE(n2_->WaitIdle());
  absl::StatusOr<Pid> child = jobs_->Spawn(id, SpawnOf(root, Resources{768 << 20, 0.5}));
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<v1::Job> now = jobs_->Get(job, kAnn);
  ASSERT_TRUE(now.ok());
  ASSERT_EQ(now->processes_size(), 2);
  EXPECT_EQ(now->processes(1).state(), v1::PROCESS_STATE_EXITED) << "recorded as running after its exit";
  EXPECT_EQ(now->processes(1).exit().code(), 4);
  n1_->Push(Exit(id, root, 1, 0));
  ASSERT_TRUE(WaitState(job, v1::JOB_STATE_FAILED));
  EXPECT_THAT(Log(job), ElementsAre("state JOB_STATE_PENDING", "state JOB_STATE_RUNNING", "20000 spawn 20000",
                                    "20000 out quick", "20000 exit 4", "20000 exit 0", "state JOB_STATE_FAILED"));
}

TEST_F(JobManagerTest, ARootThatExitedBeforeItsLaunchReturnedEndsTheJob) {
  WaitUp();
  n1_->hold_launch = true;
  absl::StatusOr<v1::Job> job = jobs_->Submit(Spec(Resources{1536ull << 20, 1.5}), kAnn);  // only n1 holds it
  ASSERT_TRUE(job.ok()) << job.status();
  uint64_t id = std::stoull(job->id());
  EXPECT_TRUE(n1_->WaitFor([&] { return n1_->held_launches() == 1; }));
  pb::Pid future = ToProto(Pid::FromIpv4(0x0a000001, 20000, 1));
  n1_->Push(Output(id, future, 1, "done"));
  n1_->Push(Exit(id, future, 2, 0));
  EXPECT_TRUE(n1_->WaitIdle());
  n1_->ReleaseLaunches();
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_SUCCEEDED)) << "no event is left to end it";
  EXPECT_THAT(Log(job->id()), ElementsAre("state JOB_STATE_PENDING", "state JOB_STATE_RUNNING", "20000 out done",
                                          "20000 exit 0", "state JOB_STATE_SUCCEEDED"));
}

TEST_F(JobManagerTest, TheResourcesABinaryAskedForAreAskedOncePerArgvAndEnv) {
  WaitUp();
  n1_->query_answer = n2_->query_answer = Resources{128 << 20, 0.5};
  v1::JobSpec spec = Spec();
  spec.clear_resources();  // the master asks the binary
  auto queries = [&] { return n1_->queries() + n2_->queries(); };
  for (int i = 0; i < 2; ++i) {
    auto [job, node] = SubmitRunning(spec);
    ASSERT_NE(node, nullptr);
    EXPECT_EQ(job.processes(0).resources().mem(), uint64_t{128} << 20);
    EXPECT_EQ(queries(), 1) << "submission " << i;
  }
  spec.add_argv("--other");
  ASSERT_NE(SubmitRunning(spec).second, nullptr);
  EXPECT_EQ(queries(), 2) << "other arguments may ask for other resources";
}

TEST_F(JobManagerTest, CancelSendsSigtermThenSigkillAfterTheGrace) {
  WaitUp();
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  uint64_t id = std::stoull(job.id());
  absl::StatusOr<v1::Job> cancelled = jobs_->Cancel(job.id(), absl::Seconds(5), kAnn);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  ASSERT_FALSE(node->kills().empty());
  EXPECT_EQ(node->kills()[0].signal(), SIGTERM);
  size_t before = node->kills().size();
  timers_->Advance(absl::Seconds(5));
  ASSERT_GT(node->kills().size(), before);
  EXPECT_EQ(node->kills().back().signal(), SIGKILL);
  pb::NodeEvent killed = Exit(id, job.processes(0).pid(), 1, 0);
  killed.mutable_event()->mutable_exit()->set_signal(SIGKILL);
  node->Push(killed);
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_CANCELLED));
  absl::StatusOr<v1::Job> done = jobs_->Get(job.id(), kAnn);
  EXPECT_THAT(done->reason(), HasSubstr("cancelled by client ann"));
  // Idempotent, and a no-op once finished.
  size_t kills = node->kills().size();
  EXPECT_TRUE(jobs_->Cancel(job.id(), absl::ZeroDuration(), kAnn).ok());
  EXPECT_EQ(node->kills().size(), kills);
  EXPECT_TRUE(jobs_->Delete(job.id(), kAnn).ok());
  EXPECT_TRUE(absl::IsNotFound(jobs_->Get(job.id(), kAnn).status()));
}

TEST_F(JobManagerTest, BadRequestsGetTheRightCodes) {
  WaitUp();
  v1::JobSpec unknown = Spec();
  unknown.mutable_binary()->set_sha256(std::string(64, 'b'));
  EXPECT_TRUE(absl::IsFailedPrecondition(jobs_->Submit(unknown, kAnn).status()));
  absl::Status too_big = jobs_->Submit(Spec(Resources{8ull << 30, 1}), kAnn).status();
  EXPECT_TRUE(absl::IsResourceExhausted(too_big)) << too_big;
  EXPECT_THAT(too_big.message(), HasSubstr("8 GiB"));
  EXPECT_THAT(too_big.message(), HasSubstr("2 GiB"));
  v1::JobSpec bad_env = Spec();
  bad_env.add_env("NOEQUALS");
  EXPECT_TRUE(absl::IsInvalidArgument(jobs_->Submit(bad_env, kAnn).status()));
  v1::JobSpec bad_hash = Spec();
  bad_hash.mutable_binary()->set_sha256("xyz");
  EXPECT_TRUE(absl::IsInvalidArgument(jobs_->Submit(bad_hash, kAnn).status()));
  // What a client could make the master keep is bounded, and named.
  v1::JobSpec huge_argv = Spec();
  huge_argv.add_argv(std::string(2 << 20, 'a'));
  absl::Status argv_status = jobs_->Submit(huge_argv, kAnn).status();
  EXPECT_TRUE(absl::IsInvalidArgument(argv_status)) << argv_status;
  EXPECT_THAT(argv_status.message(), HasSubstr("spec.argv"));
  v1::JobSpec many_labels = Spec();
  for (int i = 0; i < 65; ++i) (*many_labels.mutable_labels())[absl::StrCat("k", i)] = "v";
  EXPECT_TRUE(absl::IsInvalidArgument(jobs_->Submit(many_labels, kAnn).status()));
  v1::JobSpec long_id = Spec();
  long_id.set_request_id(std::string(129, 'r'));
  EXPECT_TRUE(absl::IsInvalidArgument(jobs_->Submit(long_id, kAnn).status()));
  v1::WriteStdinRequest big_stdin;
  big_stdin.set_job("1");
  big_stdin.set_data(std::string((1 << 20) + 1, 'x'));
  EXPECT_TRUE(absl::IsInvalidArgument(jobs_->WriteStdin(big_stdin, kAnn)));
  EXPECT_TRUE(absl::IsInvalidArgument(jobs_->Get(std::string(100, '9'), kAnn).status()));
  EXPECT_TRUE(absl::IsNotFound(jobs_->Get("999", kAnn).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(jobs_->Get("abc", kAnn).status()));
}

TEST_F(JobManagerTest, RequestIdsMakeSubmitIdempotentPerOwner) {
  WaitUp();
  v1::JobSpec spec = Spec();
  spec.set_request_id("build-42");
  (*spec.mutable_labels())["team"] = "infra";
  absl::StatusOr<v1::Job> first = jobs_->Submit(spec, kAnn);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::Job> again = jobs_->Submit(spec, kAnn);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id(), first->id());
  v1::JobSpec other = spec;
  other.add_argv("--different");
  EXPECT_TRUE(absl::IsAlreadyExists(jobs_->Submit(other, kAnn).status()));
  absl::StatusOr<v1::Job> bobs = jobs_->Submit(spec, kBob);
  ASSERT_TRUE(bobs.ok());
  EXPECT_NE(bobs->id(), first->id()) << "request ids are per owner";
  EXPECT_TRUE(absl::IsNotFound(jobs_->Get(first->id(), kBob).status())) << "bob cannot see ann's job";
  absl::StatusOr<v1::ListJobsResponse> anns = jobs_->List(v1::ListJobsRequest(), kAnn);
  ASSERT_TRUE(anns.ok());
  ASSERT_EQ(anns->jobs_size(), 1);
  EXPECT_EQ(anns->jobs(0).id(), first->id());
  EXPECT_TRUE(absl::IsFailedPrecondition(jobs_->Delete(first->id(), kAnn))) << "it has not finished";
}

// The node's stream breaks: its processes are reported lost once; when the
// node comes back still running them, they are killed and stay lost.
TEST_F(JobManagerTest, ALostNodeThatComesBackHasItsOldProcessesKilled) {
  WaitUp();
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  uint64_t id = std::stoull(job.id());
  pb::NodeHello still;
  still.set_incarnation("");
  pb::RunningProcess* running = still.add_processes();
  running->set_deployment(id);
  *running->mutable_pid() = job.processes(0).pid();
  *running->mutable_resources() = job.processes(0).resources();
  node->SetHello(still);
  node->End(absl::UnavailableError("keepalive failed"));
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_FAILED));
  ASSERT_TRUE(node->WaitFor([&] { return !node->kills().empty(); }));
  EXPECT_EQ(node->kills().back().pids_size(), 1);
  node->Push(Exit(id, job.processes(0).pid(), 7, 0));  // the node's own report comes late: ignored
  std::vector<std::string> log = Log(job.id());
  EXPECT_EQ(
      std::count_if(log.begin(), log.end(), [](const std::string& l) { return l.find(" exit ") != std::string::npos; }),
      1);
  EXPECT_THAT(jobs_->Get(job.id(), kAnn)->reason(), HasSubstr("was lost"));
}

// What the manager and its placement count (metrics/master_metrics.h).
TEST_F(JobManagerTest, CountsSubmissionsPlacementsAndLostNodes) {
  WaitUp();
  EXPECT_EQ(Metric("constellation_master_jobs_submitted_total"), 0);
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(Metric("constellation_master_jobs_submitted_total"), 1);
  EXPECT_EQ(Metric("constellation_master_placement_wait_seconds_count"), 1) << "the root waits for room if need be";
  EXPECT_EQ(Metric("constellation_master_placement_queue_length"), 0);
  EXPECT_EQ(Metric("constellation_master_nodes_lost_total"), 0);
  node->End(absl::UnavailableError("keepalive failed"));
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_FAILED));
  EXPECT_EQ(Metric("constellation_master_nodes_lost_total"), 1);
}

// The master restarts while a job runs: the node says it still runs the
// root, the master takes it back, and the job finishes with its log whole.
TEST_F(JobManagerTest, ARestartedMasterTakesBackARunningJob) {
  WaitUp();
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  uint64_t id = std::stoull(job.id());
  std::string addr = node->addr();
  pb::Pid root = job.processes(0).pid();
  node->Push(Output(id, root, 1, "before"));
  ASSERT_TRUE(node->WaitFor([&] { return !node->acks().empty(); }));
  StopMaster();

  pb::NodeHello hello;
  hello.set_incarnation("");  // the fake's stream incarnation
  pb::RunningProcess* running = hello.add_processes();
  running->set_deployment(id);
  *running->mutable_pid() = root;
  *running->mutable_resources() = job.processes(0).resources();
  StartMaster(addr == "n1:1" ? hello : pb::NodeHello(), addr == "n2:1" ? hello : pb::NodeHello());
  WaitUp();
  FakeNodeClient* again = addr == "n1:1" ? n1_ : n2_;
  ASSERT_EQ(again->attaches().size(), 1u);
  EXPECT_EQ(again->attaches()[0].resume_after(), 1u) << "what the first master stored";
  again->Push(Output(id, root, 2, "after"));
  again->Push(Exit(id, root, 3, 0));
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_SUCCEEDED));
  EXPECT_THAT(Log(job.id()), ElementsAre("state JOB_STATE_PENDING", "state JOB_STATE_RUNNING", "20000 out before",
                                         "20000 out after", "20000 exit 0", "state JOB_STATE_SUCCEEDED"));
  EXPECT_TRUE(again->kills().empty());
}

TEST_F(JobManagerTest, ARestartedMasterReportsWhatARestartedNodeNoLongerRuns) {
  WaitUp();
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  StopMaster();
  StartMaster();  // the node comes back empty: a node daemon that restarted runs nothing of before
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_FAILED));
  EXPECT_THAT(jobs_->Get(job.id(), kAnn)->reason(), HasSubstr("no longer runs it"));
}

TEST_F(JobManagerTest, ARestartedMasterWaitsTheGraceForAnAbsentNode) {
  WaitUp();
  auto [job, node] = SubmitRunning(Spec());
  ASSERT_NE(node, nullptr);
  std::string addr = node->addr();
  StopMaster();
  StartMaster({}, {}, addr);
  timers_->Advance(absl::Seconds(59));
  absl::StatusOr<v1::Job> still = jobs_->Get(job.id(), kAnn);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->state(), v1::JOB_STATE_RUNNING) << "within the grace";
  timers_->Advance(absl::Seconds(1));
  ASSERT_TRUE(WaitState(job.id(), v1::JOB_STATE_FAILED));
  EXPECT_THAT(jobs_->Get(job.id(), kAnn)->reason(), HasSubstr("did not come back within 1m"));
}

// A job still pending when the master stops (no node was up to run it)
// stays pending in the store, and the next master starts it once a node is.
TEST_F(JobManagerTest, APendingJobIsStartedByTheNextMaster) {
  StopMaster();
  StartMaster({}, {}, "*");
  absl::StatusOr<v1::Job> job = jobs_->Submit(Spec(), kAnn);
  ASSERT_TRUE(job.ok()) << job.status();
  StopMaster();
  StartMaster();
  ASSERT_TRUE(WaitState(job->id(), v1::JOB_STATE_RUNNING));
  EXPECT_THAT(Log(job->id()), ElementsAre("state JOB_STATE_PENDING", "state JOB_STATE_RUNNING"));
}

}  // namespace
}  // namespace constellation::daemon::master
