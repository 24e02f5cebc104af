// The job store's records: jobs, processes, ids, queries, and the file itself.
// (The event log: job_store_log_test.cc.)
#include "daemon/master/job_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "daemon/master/job_store_test_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace constellation::daemon::master::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;

std::vector<uint64_t> Ids(const std::vector<JobRecord>& jobs) {
  std::vector<uint64_t> ids;
  for (const JobRecord& job : jobs) ids.push_back(job.id);
  return ids;
}

ProcessRecord Process(uint64_t job, uint32_t port, v1::ProcessState state = v1::PROCESS_STATE_RUNNING) {
  ProcessRecord process{.job = job};
  process.process.mutable_pid()->set_port(port);
  process.process.set_pid_text(absl::StrCat("10.0.0.1:", port));
  process.process.set_node("10.0.0.1:9999");
  process.process.set_state(state);
  return process;
}

TEST_F(JobStoreTest, ReopenKeepsJobsProcessesEventsAndMarksAndSeqContinues) {
  JobRecord job = Job(1);
  (*job.job.mutable_spec()->mutable_labels())["team"] = "blue";
  Put(job);
  ASSERT_TRUE(store_->PutProcess(Process(1, 40)).ok());
  ASSERT_TRUE(store_->PutProcess(Process(1, 30)).ok());
  ASSERT_TRUE(store_->PutProcess(Process(1, 40, v1::PROCESS_STATE_EXITED)).ok());  // replaces, keeps its place
  EXPECT_EQ(store_->Append(1, Output("a")), 1u);
  EXPECT_EQ(store_->Append(1, Output("b"), Mark("n1", 17)), 2u);
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(store_->Append(1, Exit(0)), 3u);  // queued only: the close commits it

  Reopen();
  std::optional<JobRecord> got = store_->GetJob(1);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(got->job, job.job)) << got->job.DebugString();
  EXPECT_EQ(got->secret, job.secret);
  std::vector<ProcessRecord> processes = store_->Processes(1);
  ASSERT_EQ(processes.size(), 2u);
  EXPECT_EQ(processes[0].process.pid().port(), 40u);
  EXPECT_EQ(processes[0].process.state(), v1::PROCESS_STATE_EXITED);
  EXPECT_EQ(processes[1].process.pid().port(), 30u);
  std::vector<v1::JobEvent> events = All(1);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].seq(), 1u);
  EXPECT_EQ(events[1].process().output().data(), "b");
  EXPECT_EQ(events[2].process().exit().code(), 0);
  EXPECT_EQ(store_->CommittedSeq(1), 3u);
  std::optional<NodeMark> mark = store_->GetMark("n1");
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->incarnation, "inc-n1");
  EXPECT_EQ(mark->seq, 17u);
  EXPECT_EQ(store_->Append(1, State(v1::JOB_STATE_SUCCEEDED)), 4u);
}

TEST_F(JobStoreTest, NextJobIdNeverReusesAnIdAfterDeleteAndReopen) {
  EXPECT_EQ(store_->NextJobId(), 1u);
  EXPECT_EQ(store_->NextJobId(), 2u);
  Put(Job(2, v1::JOB_STATE_SUCCEEDED));
  ASSERT_TRUE(store_->DeleteJob(2).ok());
  Reopen();
  EXPECT_EQ(store_->NextJobId(), 3u);  // 1 was handed out (never put), 2 deleted
  Put(Job(10));                        // an id from elsewhere is not handed out later
  Reopen();
  EXPECT_EQ(store_->NextJobId(), 11u);
}

TEST_F(JobStoreTest, RequestIdIsScopedByOwner) {
  JobRecord ann = Job(1, v1::JOB_STATE_RUNNING, "ann");
  ann.job.mutable_spec()->set_request_id("r1");
  JobRecord bob = Job(2, v1::JOB_STATE_RUNNING, "bob");
  bob.job.mutable_spec()->set_request_id("r1");
  Put(ann);
  Put(bob);
  EXPECT_EQ(store_->FindByRequestId("ann", "r1")->id, 1u);
  EXPECT_EQ(store_->FindByRequestId("bob", "r1")->id, 2u);
  EXPECT_FALSE(store_->FindByRequestId("cid", "r1").has_value());
  EXPECT_FALSE(store_->FindByRequestId("ann", "r2").has_value());
  EXPECT_FALSE(store_->FindByRequestId("ann", "").has_value());  // empty: no idempotency
}

TEST_F(JobStoreTest, ListJobsFiltersByStateLabelsAndOwner) {
  JobRecord a = Job(1, v1::JOB_STATE_RUNNING, "ann");
  (*a.job.mutable_spec()->mutable_labels())["team"] = "blue";
  (*a.job.mutable_spec()->mutable_labels())["tier"] = "batch";
  JobRecord b = Job(2, v1::JOB_STATE_FAILED, "bob");
  (*b.job.mutable_spec()->mutable_labels())["team"] = "blue";
  JobRecord c = Job(3, v1::JOB_STATE_PENDING, "ann");
  (*c.job.mutable_spec()->mutable_labels())["team"] = "red";
  for (const JobRecord& job : {a, b, c}) Put(job);
  auto list = [&](JobFilter filter) {
    absl::StatusOr<JobPage> page = store_->ListJobs(filter);
    EXPECT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->next_page_token, "");
    return Ids(page->jobs);
  };
  EXPECT_EQ(list({}), (std::vector<uint64_t>{3, 2, 1}));
  EXPECT_EQ(list({.states = {v1::JOB_STATE_RUNNING, v1::JOB_STATE_PENDING}}), (std::vector<uint64_t>{3, 1}));
  EXPECT_EQ(list({.states = {v1::JOB_STATE_CANCELLED}}), (std::vector<uint64_t>{}));
  EXPECT_EQ(list({.labels = {{"team", "blue"}}}), (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(list({.labels = {{"team", "blue"}, {"tier", "batch"}}}), (std::vector<uint64_t>{1}));
  EXPECT_EQ(list({.labels = {{"tier", "web"}}}), (std::vector<uint64_t>{}));
  EXPECT_EQ(list({.owner = "ann"}), (std::vector<uint64_t>{3, 1}));
  EXPECT_EQ(list({.states = {v1::JOB_STATE_FAILED}, .owner = "ann"}), (std::vector<uint64_t>{}));
  absl::StatusOr<JobPage> page = store_->ListJobs({});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->jobs[0].job.processes().empty());
  EXPECT_EQ(page->jobs[0].job.id(), "3");
}

TEST_F(JobStoreTest, ListJobsPagesNewestFirst) {
  for (uint64_t id = 1; id <= 8; ++id) Put(Job(id, id % 2 ? v1::JOB_STATE_RUNNING : v1::JOB_STATE_SUCCEEDED));
  std::vector<std::vector<uint64_t>> pages;
  JobFilter filter{.states = {v1::JOB_STATE_RUNNING}, .page_size = 2};  // 7 5 3 1
  do {
    absl::StatusOr<JobPage> page = store_->ListJobs(filter);
    ASSERT_TRUE(page.ok()) << page.status();
    pages.push_back(Ids(page->jobs));
    filter.page_token = page->next_page_token;
  } while (!filter.page_token.empty() && pages.size() < 10);
  EXPECT_EQ(pages, (std::vector<std::vector<uint64_t>>{{7, 5}, {3, 1}}));  // no empty page at the end

  filter = JobFilter{.page_size = 3};
  absl::StatusOr<JobPage> first = store_->ListJobs(filter);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Ids(first->jobs), (std::vector<uint64_t>{8, 7, 6}));
  Put(Job(9));  // a job submitted between pages does not shift them
  filter.page_token = first->next_page_token;
  absl::StatusOr<JobPage> second = store_->ListJobs(filter);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Ids(second->jobs), (std::vector<uint64_t>{5, 4, 3}));
}

TEST_F(JobStoreTest, ListJobsRefusesABadToken) {
  Put(Job(1));
  for (std::string token : {std::string("garbage!"), absl::WebSafeBase64Escape("before:x"),
                            absl::WebSafeBase64Escape("before:-4"), absl::WebSafeBase64Escape("after:3")}) {
    absl::StatusOr<JobPage> page = store_->ListJobs({.page_token = token});
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
  }
}

TEST_F(JobStoreTest, UnfinishedAreThePendingAndRunning) {
  Put(Job(1, v1::JOB_STATE_PENDING));
  Put(Job(2, v1::JOB_STATE_SUCCEEDED));
  Put(Job(3, v1::JOB_STATE_RUNNING));
  Put(Job(4, v1::JOB_STATE_CANCELLED));
  Reopen();
  EXPECT_EQ(Ids(store_->Unfinished()), (std::vector<uint64_t>{1, 3}));
}

TEST_F(JobStoreTest, ExpiredAfterTheirTtl) {
  JobRecord a = Job(1, v1::JOB_STATE_SUCCEEDED);
  a.job.set_finished_ms(1000);
  a.job.mutable_spec()->set_ttl_after_finished_ms(500);
  JobRecord b = Job(2, v1::JOB_STATE_FAILED);
  b.job.set_finished_ms(1000);  // ttl 0: the default
  JobRecord c = Job(3, v1::JOB_STATE_RUNNING);
  c.job.mutable_spec()->set_ttl_after_finished_ms(1);
  for (const JobRecord& job : {a, b, c}) Put(job);
  EXPECT_EQ(store_->Expired(1499), (std::vector<uint64_t>{}));
  EXPECT_EQ(store_->Expired(1500), (std::vector<uint64_t>{1}));
  EXPECT_EQ(store_->Expired(1000 + JobStore::kDefaultTtlMs - 1), (std::vector<uint64_t>{1}));
  EXPECT_EQ(store_->Expired(1000 + JobStore::kDefaultTtlMs), (std::vector<uint64_t>{1, 2}));
  c.job.set_state(v1::JOB_STATE_CANCELLED);  // finishes: now it expires too
  c.job.set_finished_ms(2000);
  Put(c);
  EXPECT_EQ(store_->Expired(2001), (std::vector<uint64_t>{1, 3}));
}

TEST_F(JobStoreTest, DeleteJobRemovesItsProcessesAndEvents) {
  Put(Job(1, v1::JOB_STATE_SUCCEEDED));
  Put(Job(2));
  ASSERT_TRUE(store_->PutProcess(Process(1, 40)).ok());
  ASSERT_TRUE(store_->PutProcess(Process(2, 40)).ok());
  store_->Append(1, Output("x"));
  store_->Append(2, Output("y"));
  ASSERT_TRUE(store_->Flush().ok());
  store_->Append(1, Exit(0));  // queued: committed, then deleted with the job
  ASSERT_TRUE(store_->DeleteJob(1).ok());
  EXPECT_FALSE(store_->GetJob(1).has_value());
  EXPECT_TRUE(store_->Processes(1).empty());
  EXPECT_TRUE(All(1).empty());
  EXPECT_EQ(store_->CommittedSeq(1), 0u);
  EXPECT_EQ(store_->Append(1, Output("late")), 0u);  // a deleted job's events are dropped
  ASSERT_TRUE(store_->Flush().ok());
  Reopen();
  EXPECT_FALSE(store_->GetJob(1).has_value());
  EXPECT_TRUE(All(1).empty());
  EXPECT_EQ(store_->Processes(2).size(), 1u);  // the other job is untouched
  EXPECT_EQ(All(2).size(), 1u);
}

// The counts behind constellation_master_jobs: kept as jobs change, and read back on reopen.
TEST_F(JobStoreTest, CountsJobsByState) {
  auto counts = [&] {
    JobStore::StateCounts c = store_->CountByState();
    return std::vector<int64_t>(c.begin(), c.end());
  };
  using V = std::vector<int64_t>;  // unspecified, pending, running, succeeded, failed, cancelled
  EXPECT_EQ(counts(), (V{0, 0, 0, 0, 0, 0}));
  Put(Job(1, v1::JOB_STATE_PENDING));
  Put(Job(2, v1::JOB_STATE_RUNNING));
  Put(Job(3, v1::JOB_STATE_RUNNING));
  EXPECT_EQ(counts(), (V{0, 1, 2, 0, 0, 0}));
  Put(Job(1, v1::JOB_STATE_RUNNING));
  Put(Job(2, v1::JOB_STATE_FAILED));
  EXPECT_EQ(counts(), (V{0, 0, 2, 0, 1, 0}));
  ASSERT_TRUE(store_->DeleteJob(2).ok());
  ASSERT_TRUE(store_->DeleteJob(99).ok());  // not stored: no change
  EXPECT_EQ(counts(), (V{0, 0, 2, 0, 0, 0}));
  Put(Job(4, v1::JOB_STATE_CANCELLED));
  Reopen();
  EXPECT_EQ(counts(), (V{0, 0, 2, 0, 0, 1}));
}

TEST_F(JobStoreTest, PutJobRefusesIdZero) {
  EXPECT_EQ(store_->PutJob(Job(0)).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(JobStoreTest, AFileThatIsNotSqliteIsAClearError) {
  store_.reset();
  std::ofstream(dir_ + "/jobs.sqlite3") << std::string(4096, 'x');
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir_, options_);
  ASSERT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find(dir_ + "/jobs.sqlite3 is not a job store"), std::string::npos)
      << store.status();
  EXPECT_NE(store.status().message().find("not an SQLite database"), std::string::npos) << store.status();
  EXPECT_NE(store.status().message().find("Move it away"), std::string::npos) << store.status();
}

// Runs SQL on the store's file as another program would.
void RunSql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

TEST_F(JobStoreTest, AStoreOfAnotherSchemaVersionIsAClearError) {
  store_.reset();
  RunSql(dir_ + "/jobs.sqlite3", "UPDATE meta SET value = 99 WHERE key = 'schema_version'");
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir_, options_);
  ASSERT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find("schema version 99; this master reads version 1"), std::string::npos)
      << store.status();
}

TEST_F(JobStoreTest, AnotherSqliteDatabaseIsAClearError) {
  store_.reset();
  std::filesystem::remove(dir_ + "/jobs.sqlite3");
  RunSql(dir_ + "/jobs.sqlite3", "CREATE TABLE photos (id INTEGER)");
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir_, options_);
  ASSERT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find("without the store's meta table"), std::string::npos) << store.status();
}

TEST_F(JobStoreTest, ASecondStoreOnTheSameDirectoryIsRefused) {
  absl::StatusOr<std::unique_ptr<JobStore>> second = JobStore::Open(dir_, options_);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find("in use by another master"), std::string::npos) << second.status();
}

TEST_F(JobStoreTest, ADirectoryOthersMayWriteIsRefused) {
  store_.reset();
  ASSERT_EQ(chmod(dir_.c_str(), 0777), 0);
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir_, options_);
  ASSERT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find(dir_), std::string::npos) << store.status();
}

TEST_F(JobStoreTest, ANewDirectoryIsMadePrivate) {
  struct stat st;
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);
}

}  // namespace
}  // namespace constellation::daemon::master::testing
