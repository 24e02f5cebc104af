// JobsClient against a hand-written fake of the master's Jobs service on a
// loopback port (no daemon; TCP rather than gRPC's in-process transport,
// whose hand-over of buffers TSan cannot see in Debian's uninstrumented gRPC): uploads happen only when the master
// lacks the binary, a Watch that breaks resumes from the last seq with nothing lost or repeated, and a master that
// stays away is given up on after the budget (time is a fake clock: no test waits).
#include "cli/jobs_client.h"

#include <atomic>
#include <fstream>
#include <iterator>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "daemon/binary_cache.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace constellation::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeJobs final : public v1::Jobs::Service {
 public:
  grpc::Status HasBinary(grpc::ServerContext*, const v1::HasBinaryRequest* request,
                         v1::HasBinaryResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    response->set_present(binaries.contains(request->binary().sha256()));
    return grpc::Status::OK;
  }

  grpc::Status UploadBinary(grpc::ServerContext*, grpc::ServerReader<v1::UploadBinaryRequest>* reader,
                            v1::UploadBinaryResponse* response) override {
    v1::UploadBinaryRequest first, message;
    if (!reader->Read(&first) || !first.has_binary()) return {grpc::StatusCode::INVALID_ARGUMENT, "no name"};
    std::string bytes;
    int chunks = 0;
    while (reader->Read(&message)) {
      bytes += message.chunk();
      ++chunks;
    }
    if (bytes.size() != first.binary().size()) return {grpc::StatusCode::INVALID_ARGUMENT, "wrong size"};
    std::lock_guard<std::mutex> lock(mu);
    ++uploads;
    upload_chunks = chunks;
    binaries[first.binary().sha256()] = bytes;
    *response->mutable_binary() = first.binary();
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetJobRequest* request, v1::Job* job) override {
    std::lock_guard<std::mutex> lock(mu);
    if (away_calls > 0) {
      --away_calls;
      return {grpc::StatusCode::UNAVAILABLE, "restarting"};
    }
    if (request->job() != "7") return {grpc::StatusCode::NOT_FOUND, "no job " + request->job()};
    job->set_id("7");
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext*, const v1::ListJobsRequest* request, v1::ListJobsResponse* response) override {
    // Three pages of one job each.
    int page = request->page_token().empty() ? 0 : std::stoi(request->page_token());
    response->add_jobs()->set_id(absl::StrCat(10 - page));
    if (page < 2) response->set_next_page_token(absl::StrCat(page + 1));
    return grpc::Status::OK;
  }

  // Serves events[from_seq..]; the first `breaks` calls end with UNAVAILABLE
  // after `break_after` events (and some send an old event again first).
  grpc::Status Watch(grpc::ServerContext*, const v1::WatchRequest* request,
                     grpc::ServerWriter<v1::JobEvent>* writer) override {
    std::unique_lock<std::mutex> lock(mu);
    watch_from.push_back(request->from_seq());
    if (always_away) return {grpc::StatusCode::UNAVAILABLE, "connection refused"};
    bool breaking = breaks > 0;
    if (breaking) --breaks;
    uint64_t from = request->from_seq();
    if (repeat_on_resume && from > 0) writer->Write(events[from - 1]);  // a server sending one twice
    int sent = 0;
    for (uint64_t seq = from + 1; seq <= events.size(); ++seq) {
      if (breaking && sent == break_after) return {grpc::StatusCode::UNAVAILABLE, "Socket closed"};
      writer->Write(events[seq - 1]);
      ++sent;
    }
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::map<std::string, std::string> binaries;
  int uploads = 0;
  int upload_chunks = 0;
  int away_calls = 0;
  std::vector<v1::JobEvent> events;  // seq i at [i-1]
  int breaks = 0;
  int break_after = 0;
  bool repeat_on_resume = false;
  std::atomic<bool> always_away{false};
  std::vector<uint64_t> watch_from;
};

class JobsClientTest : public ::testing::Test {
 protected:
  JobsClientTest() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    JobsClient::Options options;
    options.reconnect_timeout = absl::Seconds(10);
    options.now = [this] { return now_; };
    options.sleep = [this](absl::Duration d) {
      slept_ += d;
      now_ += d;
    };
    options.on_reconnecting = [this](const absl::Status&) { ++outages_; };
    client_ = std::make_unique<JobsClient>(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()), options);
  }
  ~JobsClientTest() override { server_->Shutdown(); }

  // The fake's state is shared with its handler threads: set and read it
  // under its lock.
  template <class F>
  auto Locked(F f) {
    std::lock_guard<std::mutex> lock(fake_.mu);
    return f(fake_);
  }

  void MakeEvents(int n) {
    std::lock_guard<std::mutex> lock(fake_.mu);
    for (int i = 1; i <= n; ++i) {
      v1::JobEvent e;
      e.set_seq(i);
      e.mutable_process()->mutable_output()->set_data(absl::StrCat("line ", i, "\n"));
      fake_.events.push_back(e);
    }
  }

  std::vector<uint64_t> WatchAll(uint64_t from, absl::Status* status) {
    std::vector<uint64_t> seen;
    *status = client_->Watch("7", from, true, [&](const v1::JobEvent& e) { seen.push_back(e.seq()); });
    return seen;
  }

  FakeJobs fake_;
  std::unique_ptr<grpc::Server> server_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
  absl::Duration slept_;
  int outages_ = 0;
  std::unique_ptr<JobsClient> client_;
};

std::string WriteBinary(size_t size) {
  std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/binary-", size);
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 7);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST_F(JobsClientTest, UploadsOnlyWhatTheMasterLacks) {
  std::string path = WriteBinary((5 << 20) / 2);  // 2.5 MiB: three chunks
  std::vector<uint64_t> progress;
  absl::StatusOr<v1::BinaryRef> ref = JobsClient::Describe(path);
  ASSERT_TRUE(ref.ok()) << ref.status();
  absl::Status uploaded = client_->EnsureUploaded(path, *ref, [&](uint64_t sent, uint64_t total) {
    EXPECT_EQ(total, uint64_t{5 << 20} / 2);
    progress.push_back(sent);
  });
  ASSERT_TRUE(uploaded.ok()) << uploaded;
  EXPECT_EQ(ref->sha256(), *daemon::Sha256OfFile(path));
  EXPECT_EQ(ref->size(), uint64_t{5 << 20} / 2);
  EXPECT_EQ(Locked([](FakeJobs& f) { return f.uploads; }), 1);
  EXPECT_EQ(Locked([](FakeJobs& f) { return f.upload_chunks; }), 3);
  EXPECT_THAT(progress, ElementsAre(1 << 20, 2 << 20, (5 << 20) / 2));
  EXPECT_EQ(Locked([&](FakeJobs& f) { return f.binaries[ref->sha256()].size(); }), ref->size());
  std::ifstream file(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(Locked([&](FakeJobs& f) { return f.binaries[ref->sha256()] == bytes; })) << "the bytes arrived as read";
  // Again: the master has it; nothing is sent.
  ASSERT_TRUE(client_->EnsureUploaded(path, *ref, nullptr).ok());
  EXPECT_EQ(Locked([](FakeJobs& f) { return f.uploads; }), 1);
}

TEST_F(JobsClientTest, UploadOfAMissingFileIsAnError) {
  absl::StatusOr<v1::BinaryRef> ref = JobsClient::Describe("/nonexistent/prog");
  EXPECT_TRUE(absl::IsNotFound(ref.status())) << ref.status();
  EXPECT_THAT(ref.status().message(), HasSubstr("/nonexistent/prog"));
}

TEST_F(JobsClientTest, CallsAreRetriedWhileTheMasterIsAway) {
  Locked([](FakeJobs& f) { return f.away_calls = 3; });
  absl::StatusOr<v1::Job> job = client_->Get("7");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->id(), "7");
  EXPECT_EQ(slept_, absl::Milliseconds(100 + 200 + 400));
}

TEST_F(JobsClientTest, TheMastersErrorsPassThrough) {
  absl::StatusOr<v1::Job> job = client_->Get("8");
  EXPECT_TRUE(absl::IsNotFound(job.status())) << job.status();
  EXPECT_EQ(job.status().message(), "no job 8");
  EXPECT_EQ(slept_, absl::ZeroDuration()) << "NOT_FOUND is not retried";
}

TEST_F(JobsClientTest, GivesUpAfterTheBudget) {
  Locked([](FakeJobs& f) { return f.away_calls = 1000; });
  absl::StatusOr<v1::Job> job = client_->Get("7");
  EXPECT_TRUE(absl::IsUnavailable(job.status())) << job.status();
  EXPECT_THAT(job.status().message(), HasSubstr("restarting; no answer for 10s"));
  EXPECT_EQ(slept_, absl::Seconds(10));
}

TEST_F(JobsClientTest, ListReadsEveryPage) {
  absl::StatusOr<std::vector<v1::Job>> jobs = client_->List(v1::ListJobsRequest());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 3u);
  EXPECT_EQ((*jobs)[0].id(), "10");
  EXPECT_EQ((*jobs)[2].id(), "8");
}

TEST_F(JobsClientTest, WatchDeliversEveryEventOnce) {
  MakeEvents(5);
  absl::Status status;
  EXPECT_THAT(WatchAll(0, &status), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_THAT(WatchAll(3, &status), ElementsAre(4, 5));
}

TEST_F(JobsClientTest, ABrokenWatchResumesFromTheLastSeq) {
  MakeEvents(10);
  Locked([](FakeJobs& f) {
    f.breaks = 3;
    f.break_after = 3;
    return f.repeat_on_resume = true;
  });
  absl::Status status;
  EXPECT_THAT(WatchAll(0, &status), ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_THAT(Locked([](FakeJobs& f) { return f.watch_from; }), ElementsAre(0, 3, 6, 9));
  EXPECT_EQ(outages_, 3);
  // Each break was followed by progress: the shortest wait every time.
  EXPECT_EQ(slept_, absl::Milliseconds(300));
}

TEST_F(JobsClientTest, AWatchGivesUpWhenTheMasterStaysAway) {
  MakeEvents(4);
  Locked([](FakeJobs& f) {
    f.breaks = 1;
    return f.break_after = 2;
  });
  absl::Status status;
  std::vector<uint64_t> seen;
  status = client_->Watch("7", 0, true, [&](const v1::JobEvent& e) {
    seen.push_back(e.seq());
    if (e.seq() == 2) fake_.always_away = true;  // the master goes away for good
  });
  EXPECT_THAT(seen, ElementsAre(1, 2));
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("no answer for 10s"));
  EXPECT_EQ(slept_, absl::Seconds(10));
  EXPECT_EQ(outages_, 1);
  EXPECT_EQ(Locked([](FakeJobs& f) { return f.watch_from.back(); }), 2u) << "every retry asked from the last seq seen";
}

TEST(FromGrpc, KeepsCodeAndMessage) {
  absl::Status s = FromGrpc(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "needs 512 MiB, largest node 256 MiB"));
  EXPECT_TRUE(absl::IsResourceExhausted(s));
  EXPECT_EQ(s.message(), "needs 512 MiB, largest node 256 MiB");
  EXPECT_TRUE(FromGrpc(grpc::Status::OK).ok());
}

}  // namespace
}  // namespace constellation::cli
