// Joiner with fake calls: joins when no master is attached, backs off while
// the master is away, joins again when it goes, stops on a refusal that
// retrying cannot cure, and says goodbye on Leave.
#include "daemon/node_join.h"

#include <deque>

#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

// The master's side: answers joins from a script (then OK), records calls.
class FakeMaster {
 public:
  Joiner::Calls Calls() {
    return {[this](const pb::JoinRequest& request) {
              std::lock_guard<std::mutex> lock(mu_);
              joins_.push_back(request);
              cv_.notify_all();
              if (answers_.empty()) return absl::OkStatus();
              absl::Status answer = answers_.front();
              answers_.pop_front();
              return answer;
            },
            [this](const pb::LeaveRequest& request) {
              std::lock_guard<std::mutex> lock(mu_);
              leaves_.push_back(request);
              return absl::OkStatus();
            }};
  }
  void Answer(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.push_back(std::move(status));
  }
  // Waits (bounded) for the n-th join.
  bool WaitJoins(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return joins_.size() >= n; });
  }
  size_t joins() {
    std::lock_guard<std::mutex> lock(mu_);
    return joins_.size();
  }
  pb::JoinRequest join(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return joins_.at(i);
  }
  std::vector<pb::LeaveRequest> leaves() {
    std::lock_guard<std::mutex> lock(mu_);
    return leaves_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<absl::Status> answers_;
  std::vector<pb::JoinRequest> joins_;
  std::vector<pb::LeaveRequest> leaves_;
};

Joiner::Options Fast() {
  Joiner::Options options;
  options.master_addr = "master:1";
  options.self_addr = "10.0.0.5:9999";
  options.capacity = Resources{4ull << 30, 2};
  options.first_retry = absl::Milliseconds(1);
  options.max_retry = absl::Milliseconds(4);
  options.attach_wait = absl::Hours(1);  // only the tests' SetAttached ends it
  return options;
}

TEST(JoinerTest, JoinsWithItsAddressAndCapacityThenWaitsWhileAttached) {
  FakeMaster master;
  Joiner joiner(Fast(), master.Calls(), [](const absl::Status& s) { ADD_FAILURE() << s; });
  joiner.Start();
  ASSERT_TRUE(master.WaitJoins(1));
  EXPECT_EQ(master.join(0).addr(), "10.0.0.5:9999");
  EXPECT_EQ(master.join(0).capacity().mem(), 4ull << 30);
  EXPECT_EQ(master.join(0).capacity().cpu(), 2);
  joiner.SetAttached(true);
  // The master goes away (restarted): the node joins again by itself.
  joiner.SetAttached(false);
  ASSERT_TRUE(master.WaitJoins(2));
  joiner.SetAttached(true);
  EXPECT_TRUE(joiner.Leave().ok());
  EXPECT_EQ(master.joins(), 2u);
  ASSERT_EQ(master.leaves().size(), 1u);
  EXPECT_EQ(master.leaves()[0].addr(), "10.0.0.5:9999");
}

TEST(JoinerTest, RetriesWhileTheMasterIsAwayOrRefusesForNow) {
  FakeMaster master;
  master.Answer(absl::UnavailableError("connection refused"));
  master.Answer(absl::AlreadyExistsError("a node at 10.0.0.5:9999 is attached and alive"));
  master.Answer(absl::DeadlineExceededError("deadline"));
  Joiner joiner(Fast(), master.Calls(), [](const absl::Status& s) { ADD_FAILURE() << s; });
  joiner.Start();
  ASSERT_TRUE(master.WaitJoins(4)) << "three refusals, then the join that succeeds";
  joiner.SetAttached(true);
  joiner.Stop();
  EXPECT_EQ(master.joins(), 4u) << "no join while attached";
  EXPECT_TRUE(master.leaves().empty()) << "Stop says nothing";
}

TEST(JoinerTest, StopsOnARefusalRetryingCannotCure) {
  for (absl::Status refusal :
       {absl::PermissionDeniedError("Master.Join: a client certificate"), absl::InvalidArgumentError("capacity.cpu: 0"),
        absl::FailedPreconditionError("this master takes no joins")}) {
    FakeMaster master;
    master.Answer(refusal);
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::Status> fatal;
    Joiner joiner(Fast(), master.Calls(), [&](const absl::Status& status) {
      std::lock_guard<std::mutex> lock(mu);
      fatal = status;
      cv.notify_all();
    });
    joiner.Start();
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return fatal.has_value(); }));
    EXPECT_EQ(*fatal, refusal);
    lock.unlock();
    EXPECT_TRUE(joiner.Leave().ok());
    EXPECT_EQ(master.joins(), 1u);
    EXPECT_TRUE(master.leaves().empty()) << "never joined: nothing to leave";
  }
}

TEST(JoinerTest, JoinsAgainWhenNoAttachFollows) {
  FakeMaster master;
  Joiner::Options options = Fast();
  options.attach_wait = absl::Milliseconds(1);
  Joiner joiner(options, master.Calls(), [](const absl::Status& s) { ADD_FAILURE() << s; });
  joiner.Start();
  EXPECT_TRUE(master.WaitJoins(3));
  joiner.Stop();
}

}  // namespace
}  // namespace constellation::daemon
