// Unit tests of the master's small parts: NodeSet, Placement,
// BinaryDistribution and the timers, with fake nodes and no server.
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "daemon/master/binary_distribution.h"
#include "daemon/master/fake_node_client.h"
#include "daemon/master/node_set.h"
#include "daemon/master/placement.h"
#include "daemon/master/timers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace constellation::daemon::master {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records what a NodeSet reports, for the test thread to wait on.
class RecordingHandler : public NodeEventHandler {
 public:
  pb::AttachRequest AttachRequestFor(const std::string& addr) override {
    pb::AttachRequest request;
    request.set_master_addr("master:1");
    request.set_resume_after(resume_after_.load());
    return request;
  }
  void OnNodeUp(const std::string& addr, const pb::NodeHello& hello) override {
    Add("up " + addr + " " + hello.incarnation());
  }
  void OnNodeEvent(const std::string& addr, const std::string& incarnation, const pb::NodeEvent& event) override {
    Add("event " + addr + " " + incarnation + " " + std::to_string(event.seq()));
  }
  void OnNodeDown(const std::string& addr, const absl::Status& why) override {
    Add("down " + addr + " " + std::string(why.message()));
  }
  bool WaitCount(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return log_.size() >= n; });
  }
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  std::atomic<uint64_t> resume_after_{0};

 private:
  void Add(std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(std::move(line));
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> log_;
};

pb::NodeEvent Event(uint64_t seq) {
  pb::NodeEvent event;
  event.set_seq(seq);
  event.set_deployment(1);
  return event;
}

TEST(NodeSet, ReportsUpEventsInOrderAndDownThenAttachesAgain) {
  auto client = std::make_unique<FakeNodeClient>("n1:1");
  FakeNodeClient* node = client.get();
  pb::NodeHello hello;
  hello.set_incarnation("inc-a");
  node->SetHello(hello);
  std::vector<NodeSpec> specs;
  specs.push_back({std::move(client), Resources{1 << 30, 1}});
  NodeSet nodes(std::move(specs), absl::Milliseconds(1));
  RecordingHandler handler;
  handler.resume_after_ = 7;
  nodes.Start(&handler);
  EXPECT_EQ(nodes.WaitUp(absl::Seconds(10)), 1u);
  EXPECT_EQ(nodes.state("n1:1"), NodeState::kUp);
  node->Push(Event(8));
  node->Push(Event(9));
  node->End(absl::UnavailableError("connection reset"));
  ASSERT_TRUE(handler.WaitCount(5)) << ::testing::PrintToString(handler.log());
  EXPECT_THAT(handler.log(), ElementsAre("up n1:1 inc-a", "event n1:1 inc-a 8", "event n1:1 inc-a 9",
                                         "down n1:1 connection reset", "up n1:1 inc-a"));
  std::vector<pb::AttachRequest> attaches = node->attaches();
  ASSERT_GE(attaches.size(), 2u);
  EXPECT_EQ(attaches[0].resume_after(), 7u) << "what the handler said it has stored";
}

TEST(NodeSet, ANodeThatNeverAnswersIsNotUpAndShutdownEndsItsWait) {
  auto client = std::make_unique<FakeNodeClient>("n1:1");
  client->attach_error = absl::UnavailableError("connection refused");
  std::vector<NodeSpec> specs;
  specs.push_back({std::move(client), Resources{1 << 30, 1}});
  RecordingHandler handler;
  {
    NodeSet nodes(std::move(specs), absl::Milliseconds(1));
    nodes.Start(&handler);
    EXPECT_EQ(nodes.WaitUp(absl::Milliseconds(50)), 0u);
    EXPECT_EQ(nodes.state("n1:1"), NodeState::kConnecting);
  }  // joins the attach thread, which retries until then
  EXPECT_TRUE(handler.log().empty()) << "a node never up is never reported down";
}

TEST(NodeSet, DestructionEndsAnOpenStream) {
  auto client = std::make_unique<FakeNodeClient>("n1:1");
  std::vector<NodeSpec> specs;
  specs.push_back({std::move(client), Resources{1 << 30, 1}});
  RecordingHandler handler;
  auto nodes = std::make_unique<NodeSet>(std::move(specs));
  nodes->Start(&handler);
  ASSERT_EQ(nodes->WaitUp(absl::Seconds(10)), 1u);
  nodes.reset();  // must not hang in Read
  EXPECT_THAT(handler.log(), ElementsAre("up n1:1 "));
}

TEST(Placement, AWaitingSpawnIsGrantedWhenRoomFrees) {
  Placement placement;
  ASSERT_TRUE(placement.AddNode("a", Resources{4, 1}).ok());
  absl::StatusOr<scheduler::Allocation> first = placement.Place(Resources{3, 1}, false, [] { return false; });
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(placement.Place(Resources{3, 1}, false, [] { return false; }).status()));
  absl::StatusOr<scheduler::Allocation> second;
  std::thread waiter([&] { second = placement.Place(Resources{3, 1}, true, [] { return false; }); });
  placement.Release(first->id);
  waiter.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->node, "a");
}

TEST(Placement, AnAbandonedWaitEndsCancelledAndLeavesTheQueue) {
  Placement placement;
  ASSERT_TRUE(placement.AddNode("a", Resources{4, 1}).ok());
  ASSERT_TRUE(placement.Place(Resources{4, 1}, false, [] { return false; }).ok());
  std::atomic<bool> abandoned{false};
  absl::StatusOr<scheduler::Allocation> waited;
  std::thread waiter([&] { waited = placement.Place(Resources{2, 1}, true, [&] { return abandoned.load(); }); });
  abandoned = true;
  placement.Wake();
  waiter.join();
  EXPECT_TRUE(absl::IsCancelled(waited.status())) << waited.status();
  placement.Shutdown();
  EXPECT_TRUE(absl::IsCancelled(placement.Place(Resources{1, 1}, true, [] { return false; }).status()));
}

TEST(Placement, LosingTheOnlyNodeWithRoomFailsTheWait) {
  Placement placement;
  ASSERT_TRUE(placement.AddNode("big", Resources{8, 1}).ok());
  ASSERT_TRUE(placement.AddNode("small", Resources{2, 1}).ok());
  ASSERT_TRUE(placement.Place(Resources{8, 1}, false, [] { return false; }).ok());
  absl::StatusOr<scheduler::Allocation> waited;
  std::thread waiter([&] { waited = placement.Place(Resources{4, 1}, true, [] { return false; }); });
  placement.RemoveNode("big");
  waiter.join();
  EXPECT_TRUE(absl::IsResourceExhausted(waited.status())) << waited.status();
}

TEST(Placement, AWaitBeforeAnyNodeIsUpWaitsForOne) {
  Placement placement;
  EXPECT_TRUE(absl::IsUnavailable(placement.Place(Resources{1, 1}, false, [] { return false; }).status()));
  absl::StatusOr<scheduler::Allocation> waited;
  std::thread waiter([&] { waited = placement.Place(Resources{1, 1}, true, [] { return false; }); });
  ASSERT_TRUE(placement.AddNode("late", Resources{4, 1}).ok());
  waiter.join();
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ(waited->node, "late");
  std::atomic<bool> abandoned{false};
  Placement empty;
  bool found = true;
  std::thread nodes([&] { found = empty.WaitForNodes([&] { return abandoned.load(); }); });
  abandoned = true;
  empty.Wake();
  nodes.join();
  EXPECT_FALSE(found);
}

// What it counts (metrics/master_metrics.h): the queue's length while a
// spawn waits, and each placed wait.
TEST(Placement, CountsTheQueueAndTheWaits) {
  metrics::Registry registry;
  metrics::MasterMetrics metrics(registry);
  auto metric = [&](const std::string& series) {
    std::string text = registry.Render();
    size_t at = text.find("\n" + series + " ");
    return at == std::string::npos
               ? std::string("absent")
               : text.substr(at + series.size() + 2, text.find('\n', at + 1) - at - series.size() - 2);
  };
  Placement placement(&metrics);
  ASSERT_TRUE(placement.AddNode("a", Resources{4, 1}).ok());
  absl::StatusOr<scheduler::Allocation> first = placement.Place(Resources{3, 1}, true, [] { return false; });
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(metric("constellation_master_placement_wait_seconds_count"), "1");
  EXPECT_EQ(metric("constellation_master_placement_queue_length"), "0");
  absl::StatusOr<scheduler::Allocation> second;
  std::thread waiter([&] { second = placement.Place(Resources{3, 1}, true, [] { return false; }); });
  while (metric("constellation_master_placement_queue_length") != "1") std::this_thread::yield();
  placement.Release(first->id);
  waiter.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(metric("constellation_master_placement_queue_length"), "0");
  EXPECT_EQ(metric("constellation_master_placement_wait_seconds_count"), "2");
  // try_spawn (no wait) is not a wait.
  EXPECT_FALSE(placement.Place(Resources{3, 1}, false, [] { return false; }).ok());
  EXPECT_EQ(metric("constellation_master_placement_wait_seconds_count"), "2");
}

TEST(Placement, CouldEverFitNamesBothSizes) {
  Placement placement;
  absl::Status status =
      placement.CouldEverFit(Resources{8ull << 30, 1}, {Resources{2ull << 30, 4}, Resources{1ull << 30, 8}});
  EXPECT_TRUE(absl::IsResourceExhausted(status));
  EXPECT_THAT(status.message(), HasSubstr("8 GiB"));
  EXPECT_THAT(status.message(), HasSubstr("2 GiB"));
  EXPECT_TRUE(placement.CouldEverFit(Resources{1ull << 30, 1}, {Resources{2ull << 30, 4}}).ok());
}

class BinaryDistributionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = std::string(getenv("TEST_TMPDIR")) + "/cache";
    absl::StatusOr<std::unique_ptr<BinaryCache>> cache = BinaryCache::Create(dir, 1 << 20);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    std::string file = std::string(getenv("TEST_TMPDIR")) + "/program";
    const std::string contents = "#!/bin/sh\necho hi\n";
    std::ofstream(file) << contents;
    absl::StatusOr<std::string> sha = Sha256OfFile(file);
    ASSERT_TRUE(sha.ok());
    id_.set_sha256(*sha);
    id_.set_size(contents.size());
    absl::Status added = cache_->AddFile(id_, file);
    ASSERT_TRUE(added.ok()) << added;
  }
  std::unique_ptr<BinaryCache> cache_;
  pb::BinaryId id_;
};

TEST_F(BinaryDistributionTest, SendsABinaryOncePerNodeAndAgainAfterForget) {
  FakeNodeClient node("n1:1");  // outlives the distribution: its prefetches use it
  BinaryDistribution distribution(cache_.get());
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { EXPECT_TRUE(distribution.EnsureOn(node, id_).ok()); });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(node.uploads(), 1);
  EXPECT_TRUE(node.binaries().contains(id_.sha256()));
  FakeNodeClient restarted("n1:1");  // same address, empty cache
  distribution.Forget("n1:1");
  ASSERT_TRUE(distribution.EnsureOn(restarted, id_).ok());
  EXPECT_EQ(restarted.uploads(), 1);
}

TEST_F(BinaryDistributionTest, RefusesABinaryNobodyUploaded) {
  FakeNodeClient node("n1:1");  // outlives the distribution: its prefetches use it
  BinaryDistribution distribution(cache_.get());
  pb::BinaryId unknown;
  unknown.set_sha256(std::string(64, 'a'));
  unknown.set_size(5);
  EXPECT_FALSE(distribution.EnsureOn(node, unknown).ok());
  EXPECT_EQ(node.uploads(), 0);
}

TEST(Timers, FakeTimersRunWhatFallsDueInOrder) {
  FakeTimers timers;
  std::vector<int> ran;
  timers.After(absl::Seconds(2), [&] { ran.push_back(2); });
  timers.After(absl::Seconds(1), [&] {
    ran.push_back(1);
    timers.After(absl::Milliseconds(500), [&] { ran.push_back(15); });
  });
  timers.After(absl::Seconds(5), [&] { ran.push_back(5); });
  timers.Advance(absl::Seconds(3));
  EXPECT_THAT(ran, ElementsAre(1, 15, 2));
  EXPECT_EQ(timers.pending(), 1u);
}

TEST(Timers, RealTimersRunACallbackAndDropPendingOnesAtDestruction) {
  std::mutex mu;
  std::condition_variable cv;
  bool ran = false;
  {
    RealTimers timers;
    timers.After(absl::ZeroDuration(), [&] {
      std::lock_guard<std::mutex> lock(mu);
      ran = true;
      cv.notify_all();
    });
    timers.After(absl::Hours(1), [] { ADD_FAILURE() << "must be dropped"; });
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return ran; }));
  }
}

}  // namespace
}  // namespace constellation::daemon::master
