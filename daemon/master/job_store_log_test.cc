// The job store's event log: seqs, batching and commits, truncation, marks,
// the commit listener. (Records and the file: job_store_test.cc.)
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "daemon/master/job_store.h"
#include "daemon/master/job_store_test_util.h"

namespace constellation::daemon::master::testing {
namespace {

// What the commit listener saw, and a way to wait for it without sleeping.
class Listener {
 public:
  ~Listener() {
    if (store_ != nullptr) store_->SetCommitListener(nullptr);  // the commit thread may be delivering a note
  }
  void Attach(JobStore& store) {
    store_ = &store;
    store.SetCommitListener([this](const std::vector<uint64_t>& jobs, const std::vector<NodeMark>& marks) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_;
      for (uint64_t job : jobs) jobs_.insert(job);
      for (const NodeMark& mark : marks) marks_.push_back(mark);
      cv_.notify_all();
    });
  }
  // True once a commit of `job` was reported; false after a generous bound.
  bool WaitForJob(uint64_t job) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return jobs_.count(job) > 0; });
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<NodeMark> marks() {
    std::lock_guard<std::mutex> lock(mu_);
    return marks_;
  }

 private:
  JobStore* store_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  std::set<uint64_t> jobs_;
  std::vector<NodeMark> marks_;
};

TEST_F(JobStoreTest, CommittedSeqAdvancesOnlyOnCommit) {
  Put(Job(1));
  EXPECT_EQ(store_->Append(1, Output("a")), 1u);
  EXPECT_EQ(store_->Append(1, Output("b")), 2u);
  EXPECT_EQ(store_->CommittedSeq(1), 0u);
  EXPECT_TRUE(All(1).empty());
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(store_->CommittedSeq(1), 2u);
  EXPECT_EQ(All(1).size(), 2u);
  EXPECT_EQ(store_->Append(1, Output("c")), 3u);
  Put(Job(2));  // a synchronous write commits what is queued before it
  EXPECT_EQ(store_->CommittedSeq(1), 3u);
}

TEST_F(JobStoreTest, ReadEventsStopsAtItsLimits) {
  Put(Job(1));
  for (int i = 0; i < 10; ++i) store_->Append(1, Output("0123456789"));
  ASSERT_TRUE(store_->Flush().ok());
  const size_t size = Output("0123456789").ByteSizeLong();  // as stored: without the seq
  auto seqs = [&](uint64_t after, size_t max_events, size_t max_bytes) {
    std::vector<uint64_t> seqs;
    for (const v1::JobEvent& event : store_->ReadEvents(1, after, max_events, max_bytes)) seqs.push_back(event.seq());
    return seqs;
  };
  EXPECT_EQ(seqs(0, 3, 1 << 20), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(seqs(8, 100, 1 << 20), (std::vector<uint64_t>{9, 10}));
  EXPECT_EQ(seqs(10, 100, 1 << 20), (std::vector<uint64_t>{}));
  EXPECT_EQ(seqs(0, 100, 0), (std::vector<uint64_t>{1}));               // always one if there is one
  EXPECT_EQ(seqs(0, 100, 2 * size), (std::vector<uint64_t>{1, 2, 3}));  // the third passes the bound
  EXPECT_EQ(seqs(0, 100, 2 * size - 1), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(seqs(0, 0, 1 << 20), (std::vector<uint64_t>{}));
}

TEST_F(JobStoreTest, OutputBeyondTheLimitIsReplacedByOneTruncatedEvent) {
  options_.max_log_bytes_per_job = 1000;
  Reopen();
  Put(Job(1));
  const std::string data(100, 'x');
  const uint64_t fits = 1000 / Output(data).ByteSizeLong();
  for (uint64_t seq = 1; seq <= fits; ++seq) ASSERT_EQ(store_->Append(1, Output(data)), seq);
  EXPECT_EQ(store_->Append(1, Output(data)), 0u);  // replaced by Truncated (seq fits + 1)
  EXPECT_EQ(store_->Append(1, Output(data)), 0u);  // dropped without a trace
  v1::JobEvent eof = Output("");
  eof.mutable_process()->mutable_output()->set_eof(true);
  EXPECT_EQ(store_->Append(1, eof), fits + 2);  // never dropped
  EXPECT_EQ(store_->Append(1, Exit(3)), fits + 3);
  ASSERT_TRUE(store_->Flush().ok());

  std::vector<v1::JobEvent> events = All(1);
  ASSERT_EQ(events.size(), fits + 3);
  const v1::JobEvent& truncated = events[fits];
  EXPECT_EQ(truncated.seq(), fits + 1);
  ASSERT_TRUE(truncated.has_truncated());
  EXPECT_EQ(truncated.truncated().dropped_bytes(), 100u);
  EXPECT_EQ(truncated.truncated().why(), "output beyond 1000 bytes is not kept");
  EXPECT_TRUE(events[fits + 1].process().output().eof());
  EXPECT_EQ(events[fits + 2].process().exit().code(), 3);

  Reopen();  // still truncated: no second Truncated event
  EXPECT_EQ(store_->Append(1, Output(data)), 0u);
  EXPECT_EQ(store_->Append(1, State(v1::JOB_STATE_FAILED)), fits + 4);
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(All(1).size(), fits + 4);
}

TEST_F(JobStoreTest, TheDefaultLimitIsNamedInMiB) {
  EXPECT_EQ(EventQueue::TruncatedWhy(64ull << 20), "output beyond 64 MiB is not kept");
  EXPECT_EQ(EventQueue::TruncatedWhy(8192), "output beyond 8 KiB is not kept");
}

TEST_F(JobStoreTest, TheCommitThreadCommitsWithinTheInterval) {
  options_.commit_interval = absl::Milliseconds(5);
  Reopen();
  Listener listener;
  listener.Attach(*store_);
  Put(Job(1));
  EXPECT_EQ(store_->Append(1, Output("a")), 1u);
  ASSERT_TRUE(listener.WaitForJob(1));  // no Flush: the timer committed it
  EXPECT_EQ(store_->CommittedSeq(1), 1u);
  EXPECT_EQ(All(1).size(), 1u);
}

TEST_F(JobStoreTest, TheCommitThreadCommitsAFullBatchAtOnce) {
  options_.commit_batch = 4;
  Reopen();
  Listener listener;
  listener.Attach(*store_);
  Put(Job(1));
  for (int i = 0; i < 3; ++i) store_->Append(1, Output("a"));
  EXPECT_EQ(store_->CommittedSeq(1), 0u);  // the timer is an hour away
  store_->Append(1, Output("a"));
  ASSERT_TRUE(listener.WaitForJob(1));
  EXPECT_EQ(All(1).size(), 4u);
}

TEST_F(JobStoreTest, AMarkIsCommittedWithItsEvent) {
  Listener listener;
  listener.Attach(*store_);
  Put(Job(1));
  EXPECT_EQ(listener.calls(), 0);  // a record alone is not reported
  store_->Append(1, Output("a"), Mark("n1", 7));
  EXPECT_FALSE(store_->GetMark("n1").has_value());
  EXPECT_EQ(store_->CommittedSeq(1), 0u);
  store_->Mark(Mark("n2", 1));
  store_->Mark(Mark("n2", 2));
  store_->Append(99, Output("b"), Mark("n3", 4));  // no such job: the event is dropped, its mark kept
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(store_->CommittedSeq(1), 1u);
  EXPECT_EQ(store_->GetMark("n1")->seq, 7u);
  EXPECT_EQ(store_->GetMark("n2")->seq, 2u);
  EXPECT_EQ(store_->GetMark("n3")->seq, 4u);
  EXPECT_FALSE(store_->GetMark("n4").has_value());
  EXPECT_EQ(listener.calls(), 1);
  std::vector<NodeMark> marks = listener.marks();  // the latest per node
  ASSERT_EQ(marks.size(), 3u);
  EXPECT_EQ(marks[0].node, "n1");
  EXPECT_EQ(marks[1].node, "n2");
  EXPECT_EQ(marks[1].seq, 2u);
}

TEST_F(JobStoreTest, ConcurrentAppendsGetGaplessSeqs) {
  options_.commit_interval = absl::Milliseconds(1);
  options_.commit_batch = 64;
  Reopen();
  Listener listener;
  listener.Attach(*store_);
  for (uint64_t job = 1; job <= 3; ++job) Put(Job(job));
  constexpr int kPerThread = 1000;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> given(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      uint64_t job = t < 2 ? 1 : t;  // two threads share job 1
      for (int i = 0; i < kPerThread; ++i) given[t].push_back(store_->Append(job, Output("x"), Mark("n", i)));
    });
  }
  threads.emplace_back([&] {  // a reader sees committed seqs only grow, and them readable
    uint64_t last = 0;
    while (last < 2 * kPerThread) {
      uint64_t committed = store_->CommittedSeq(1);
      EXPECT_GE(committed, last);
      std::vector<v1::JobEvent> events = store_->ReadEvents(1, last, 1 << 20, 1 << 30);
      EXPECT_GE(events.size(), committed - last);  // more may have been committed since
      for (const v1::JobEvent& event : events) EXPECT_EQ(event.seq(), ++last);
      ASSERT_TRUE(store_->Flush().ok());  // synchronous commits beside the commit thread's
    }
  });
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(store_->Flush().ok());
  std::set<uint64_t> job1(given[0].begin(), given[0].end());
  job1.insert(given[1].begin(), given[1].end());
  EXPECT_EQ(job1.size(), 2u * kPerThread);
  EXPECT_EQ(*job1.begin(), 1u);
  EXPECT_EQ(*job1.rbegin(), 2u * kPerThread);
  EXPECT_EQ(All(1).size(), 2u * kPerThread);
  for (uint64_t job = 2; job <= 3; ++job) EXPECT_EQ(store_->CommittedSeq(job), uint64_t{kPerThread});
}

}  // namespace
}  // namespace constellation::daemon::master::testing
