#pragma once

// What the job store's tests share: a private temporary state directory, a
// store opened in it (with a commit timer that never fires unless a test asks
// for one) and builders of records and events.

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/master/job_store.h"
#include "gtest/gtest.h"

namespace constellation::daemon::master::testing {

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/job_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    base_ = dir;
    dir_ = base_ + "/state";
    options_.commit_interval = absl::Hours(1);  // tests commit with Flush()
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(base_);
  }

  // Closes the store (committing what is queued) and opens it again.
  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir_, options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  static JobRecord Job(uint64_t id, v1::JobState state = v1::JOB_STATE_RUNNING, const std::string& owner = "ann") {
    JobRecord record;
    record.id = id;
    record.job.set_id(absl::StrCat(id));
    record.job.set_state(state);
    record.job.set_owner(owner);
    record.job.set_created_ms(1000 + id);
    record.job.mutable_spec()->add_argv("prog");
    record.job.mutable_spec()->mutable_binary()->set_sha256(std::string(64, 'a'));
    record.secret = std::string(32, static_cast<char>('0' + id % 10));
    return record;
  }

  void Put(const JobRecord& job) { ASSERT_TRUE(store_->PutJob(job).ok()); }

  static v1::JobEvent Output(const std::string& data, int64_t time_ms = 5) {
    v1::JobEvent event;
    event.set_time_ms(time_ms);
    event.mutable_process()->mutable_output()->set_fd(1);
    event.mutable_process()->mutable_output()->set_data(data);
    return event;
  }
  static v1::JobEvent Exit(int code) {
    v1::JobEvent event;
    event.set_time_ms(6);
    event.mutable_process()->mutable_exit()->set_code(code);
    return event;
  }
  static v1::JobEvent State(v1::JobState state) {
    v1::JobEvent event;
    event.set_time_ms(7);
    event.mutable_state()->set_state(state);
    return event;
  }
  static NodeMark Mark(const std::string& node, uint64_t seq) { return NodeMark{node, "inc-" + node, seq}; }

  std::vector<v1::JobEvent> All(uint64_t job) { return store_->ReadEvents(job, 0, 1 << 20, 1 << 30); }

  std::string base_;  // removed at the end
  std::string dir_;   // the state directory
  JobStore::Options options_;
  std::unique_ptr<JobStore> store_;
};

}  // namespace constellation::daemon::master::testing
