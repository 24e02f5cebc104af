// Randomized model test: seeded streams of add/remove-node, try-place, enqueue,
// release and cancel events, run against the Scheduler and against a naive
// model of the documented policy (docs/scheduler.md) that recomputes everything
// from scratch. After every step: no node is over-committed, the scheduler's
// accounting equals the model's, grants and errors are the ones the model
// expects, and no waiting request could be placed under the policy.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"

namespace constellation::scheduler {
namespace {

// Amounts the model knows exactly, in micro-cores, with the double the
// scheduler is given. 0.1 and 0.3 are not exact in binary on purpose.
struct Cpu {
  double cores;
  int64_t micro;
};
constexpr Cpu kRequestCpu[] = {{0, 0},        {0.01, 10000}, {0.0625, 62500}, {0.1, 100000},  {0.25, 250000},
                               {0.3, 300000}, {0.5, 500000}, {1, 1000000},    {1.5, 1500000}, {3, 3000000}};
constexpr Cpu kNodeCpu[] = {{0.5, 500000}, {1, 1000000}, {1.3, 1300000}, {2, 2000000}, {4, 4000000}};
constexpr uint64_t kRequestMem[] = {0, kMiB, 100 * kMiB, 256 * kMiB, kGiB, 3 * kGiB};
constexpr uint64_t kNodeMem[] = {512 * kMiB, kGiB, 4 * kGiB, 8 * kGiB};

struct Need {
  uint64_t mem;
  int64_t micro;
  bool FitsIn(uint64_t mem_room, int64_t micro_room) const { return mem <= mem_room && micro <= micro_room; }
};

class Model {
 public:
  struct Node {
    uint64_t mem;
    int64_t micro;
  };
  struct Alloc {
    std::string node;
    Need need;
    Resources request;
  };
  struct Waiter {
    TicketId ticket;
    Need need;
    Resources request;
  };
  // What TakeGrants() should give: a node (and allocation id), or "" for a failure.
  struct Expected {
    TicketId ticket;
    std::string node;
    AllocationId id;
  };

  std::map<std::string, Node> nodes;
  std::map<AllocationId, Alloc> allocs;
  std::vector<Waiter> queue;
  AllocationId next_id = 1;
  TicketId next_ticket = 1;

  // Free room of every node, summed from scratch.
  std::map<std::string, Need> Free() const {
    std::map<std::string, Need> free;
    for (const auto& [id, n] : nodes) free[id] = Need{n.mem, n.micro};
    for (const auto& [id, a] : allocs) {
      free[a.node].mem -= a.need.mem;
      free[a.node].micro -= a.need.micro;
    }
    return free;
  }

  bool EverFits(const Need& need) const {
    return std::any_of(nodes.begin(), nodes.end(),
                       [&](const auto& n) { return need.FitsIn(n.second.mem, n.second.micro); });
  }

  // Adds to `reserved` the nodes `need` could ever use.
  void Reserve(const Need& need, std::set<std::string>& reserved) const {
    for (const auto& [id, n] : nodes) {
      if (need.FitsIn(n.mem, n.micro)) reserved.insert(id);
    }
  }

  // Nodes some waiting request could ever use.
  std::set<std::string> Reserved() const {
    std::set<std::string> reserved;
    for (const Waiter& w : queue) Reserve(w.need, reserved);
    return reserved;
  }

  // The documented choice: most free CPU share, then most free memory share,
  // then the smallest id; "" when no allowed node has room.
  std::string Best(const Need& need, const std::set<std::string>& reserved,
                   const std::map<std::string, Need>& free) const {
    std::vector<std::string> fitting;
    for (const auto& [id, f] : free) {
      if (!reserved.count(id) && need.FitsIn(f.mem, f.micro)) fitting.push_back(id);
    }
    if (fitting.empty()) return "";
    auto better = [&](const std::string& x, const std::string& y) {  // x strictly before y
      const Node &cx = nodes.at(x), &cy = nodes.at(y);
      const Need &fx = free.at(x), &fy = free.at(y);
      __int128 lx = static_cast<__int128>(fx.micro) * cy.micro;
      __int128 ly = static_cast<__int128>(fy.micro) * cx.micro;
      if (lx != ly) return lx > ly;
      unsigned __int128 mx = static_cast<unsigned __int128>(fx.mem) * cy.mem;
      unsigned __int128 my = static_cast<unsigned __int128>(fy.mem) * cx.mem;
      if (mx != my) return mx > my;
      return x < y;
    };
    std::sort(fitting.begin(), fitting.end(), better);
    return fitting.front();
  }

  AllocationId Place(const std::string& node, const Need& need, const Resources& request) {
    allocs[next_id] = Alloc{node, need, request};
    return next_id++;
  }

  // Serves the queue in order under the policy; returns the expected grants.
  std::vector<Expected> Settle() {
    std::vector<Expected> out;
    std::set<std::string> ahead;  // nodes the waiters so far could use
    std::map<std::string, Need> free = Free();
    for (size_t i = 0; i < queue.size();) {
      std::string node = Best(queue[i].need, ahead, free);
      if (node.empty()) {
        Reserve(queue[i].need, ahead);
        ++i;
        continue;
      }
      AllocationId id = Place(node, queue[i].need, queue[i].request);
      free[node].mem -= queue[i].need.mem;
      free[node].micro -= queue[i].need.micro;
      out.push_back(Expected{queue[i].ticket, node, id});
      queue.erase(queue.begin() + i);
    }
    return out;
  }
};

class ModelTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void ExpectGrants(const std::vector<Model::Expected>& expected, const std::string& step) {
    std::vector<Grant> grants = s_.TakeGrants();
    for (const Grant& g : grants) ++(g.allocation.ok() ? stats_.granted : stats_.failed);
    ASSERT_EQ(grants.size(), expected.size()) << step;
    for (size_t i = 0; i < grants.size(); ++i) {
      ASSERT_EQ(grants[i].ticket, expected[i].ticket) << step;
      if (expected[i].node.empty()) {
        ASSERT_EQ(grants[i].allocation.status().code(), absl::StatusCode::kResourceExhausted) << step;
        continue;
      }
      ASSERT_TRUE(grants[i].allocation.ok()) << step << ": " << grants[i].allocation.status();
      EXPECT_EQ(grants[i].allocation->node, expected[i].node) << step;
      EXPECT_EQ(grants[i].allocation->id, expected[i].id) << step;
      EXPECT_EQ(grants[i].allocation->resources, m_.allocs.at(expected[i].id).request) << step;
    }
  }

  // The checks that hold after every step.
  void Check(const std::string& step) {
    s_.CheckInvariants();
    std::map<std::string, Need> free = m_.Free();
    std::set<std::string> reserved = m_.Reserved();
    std::vector<NodeState> nodes = s_.Nodes();
    ASSERT_EQ(nodes.size(), m_.nodes.size()) << step;
    for (const NodeState& n : nodes) {
      ASSERT_TRUE(m_.nodes.count(n.id)) << step;
      const Model::Node& c = m_.nodes.at(n.id);
      const Need& f = free.at(n.id);
      ASSERT_LE(f.mem, c.mem) << step << ": " << n.id << " over-committed in memory";
      ASSERT_GE(f.micro, 0) << step << ": " << n.id << " over-committed in cpu";
      EXPECT_EQ(n.allocated.mem, c.mem - f.mem) << step << " " << n.id;
      EXPECT_EQ(n.allocated.cpu, static_cast<double>(c.micro - f.micro) / 1e6) << step << " " << n.id;
      EXPECT_LE(n.allocated.mem, n.capacity.mem) << step;
      EXPECT_LE(n.allocated.cpu, n.capacity.cpu) << step;
      EXPECT_EQ(n.reserved, reserved.count(n.id) > 0) << step << " " << n.id;
    }
    ASSERT_EQ(s_.allocation_count(), m_.allocs.size()) << step;
    std::vector<Waiting> queue = s_.Queue();
    ASSERT_EQ(queue.size(), m_.queue.size()) << step;
    std::set<std::string> ahead;
    for (size_t i = 0; i < queue.size(); ++i) {
      ASSERT_EQ(queue[i].ticket, m_.queue[i].ticket) << step;
      // Nobody waits who could be placed: every node with room for waiter i is
      // one a waiter ahead of it could use, and something could hold it.
      ASSERT_TRUE(m_.EverFits(m_.queue[i].need)) << step;
      for (const auto& [id, f] : free) {
        ASSERT_FALSE(!ahead.count(id) && m_.queue[i].need.FitsIn(f.mem, f.micro))
            << step << ": ticket " << queue[i].ticket << " waits although " << id << " has room";
      }
      m_.Reserve(m_.queue[i].need, ahead);
    }
  }

  void AddNode(std::mt19937& rng) {
    std::string id = absl::StrCat("10.0.0.", rng() % 8, ":9999");
    const Cpu& cpu = kNodeCpu[rng() % std::size(kNodeCpu)];
    uint64_t mem = kNodeMem[rng() % std::size(kNodeMem)];
    absl::Status status = s_.AddNode(id, Resources{mem, cpu.cores});
    if (m_.nodes.count(id)) {
      ASSERT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
      return;
    }
    ASSERT_TRUE(status.ok()) << status;
    m_.nodes[id] = Model::Node{mem, cpu.micro};
    ExpectGrants(m_.Settle(), "add " + id);
  }

  void RemoveNode(std::mt19937& rng) {
    std::string id = absl::StrCat("10.0.0.", rng() % 8, ":9999");
    absl::StatusOr<std::vector<Allocation>> lost = s_.RemoveNode(id);
    if (!m_.nodes.count(id)) {
      ASSERT_EQ(lost.status().code(), absl::StatusCode::kNotFound);
      return;
    }
    ASSERT_TRUE(lost.ok()) << lost.status();
    std::vector<Allocation> expected_lost;
    for (auto it = m_.allocs.begin(); it != m_.allocs.end();) {
      if (it->second.node != id) {
        ++it;
        continue;
      }
      expected_lost.push_back(Allocation{it->first, id, it->second.request});
      it = m_.allocs.erase(it);
    }
    EXPECT_EQ(*lost, expected_lost);
    stats_.lost += lost->size();
    m_.nodes.erase(id);
    std::vector<Model::Expected> expected;
    for (size_t i = 0; i < m_.queue.size();) {
      if (m_.EverFits(m_.queue[i].need)) {
        ++i;
        continue;
      }
      expected.push_back(Model::Expected{m_.queue[i].ticket, "", 0});
      m_.queue.erase(m_.queue.begin() + i);
    }
    for (const Model::Expected& e : m_.Settle()) expected.push_back(e);
    ExpectGrants(expected, "remove " + id);
  }

  std::pair<Resources, Need> RandomRequest(std::mt19937& rng) {
    const Cpu& cpu = kRequestCpu[rng() % std::size(kRequestCpu)];
    uint64_t mem = kRequestMem[rng() % std::size(kRequestMem)];
    return {Resources{mem, cpu.cores}, Need{mem, cpu.micro}};
  }

  void TryPlace(std::mt19937& rng) {
    auto [request, need] = RandomRequest(rng);
    absl::StatusOr<Allocation> a = s_.TryPlace(request);
    std::string node = m_.EverFits(need) ? m_.Best(need, m_.Reserved(), m_.Free()) : "";
    if (node.empty()) {
      ASSERT_EQ(a.status().code(), absl::StatusCode::kResourceExhausted) << a.status();
      ++stats_.exhausted;
      return;
    }
    ++stats_.placed;
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->node, node);
    EXPECT_EQ(a->id, m_.Place(node, need, request));
    EXPECT_EQ(a->resources, request);
  }

  void Enqueue(std::mt19937& rng) {
    auto [request, need] = RandomRequest(rng);
    absl::StatusOr<TicketId> t = s_.Enqueue(request);
    if (!m_.EverFits(need)) {
      ASSERT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted);
      ++stats_.never;
      return;
    }
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_EQ(*t, m_.next_ticket++);
    m_.queue.push_back(Model::Waiter{*t, need, request});
    ExpectGrants(m_.Settle(), absl::StrCat("enqueue ", *t));
  }

  void Release(AllocationId id) {
    absl::Status status = s_.Release(id);
    if (!m_.allocs.erase(id)) {
      ASSERT_EQ(status.code(), absl::StatusCode::kNotFound);
      return;
    }
    ASSERT_TRUE(status.ok()) << status;
    ExpectGrants(m_.Settle(), absl::StrCat("release ", id));
  }

  void Release(std::mt19937& rng) {
    if (m_.allocs.empty() || rng() % 8 == 0) return Release(rng() % (m_.next_id + 2));  // maybe unknown
    auto it = m_.allocs.begin();
    std::advance(it, rng() % m_.allocs.size());
    Release(it->first);
  }

  void Cancel(std::mt19937& rng) {
    TicketId ticket =
        m_.queue.empty() || rng() % 4 == 0 ? rng() % (m_.next_ticket + 2) : m_.queue[rng() % m_.queue.size()].ticket;
    absl::Status status = s_.Cancel(ticket);
    auto it = std::find_if(m_.queue.begin(), m_.queue.end(), [&](const auto& w) { return w.ticket == ticket; });
    if (it == m_.queue.end()) {
      ASSERT_EQ(status.code(), absl::StatusCode::kNotFound);
      return;
    }
    ASSERT_TRUE(status.ok()) << status;
    m_.queue.erase(it);
    ExpectGrants(m_.Settle(), absl::StrCat("cancel ", ticket));
  }

  Scheduler s_;
  Model m_;
  struct {
    int granted = 0, failed = 0, placed = 0, exhausted = 0, never = 0, lost = 0;
  } stats_;
};

TEST_P(ModelTest, RandomEventsAgreeWithTheModel) {
  std::mt19937 rng(GetParam());
  // Odd seeds keep the cluster near its capacity with a short queue; even seeds
  // congest it (arrivals outpace exits) so the queue grows long.
  const bool congested = GetParam() % 2 == 0;
  const size_t queue_cap = congested ? 150 : 40;
  const uint32_t enqueue_end = congested ? 65 : 55;
  constexpr int kSteps = 4000;
  size_t max_queue = 0;
  for (int step = 0; step < kSteps; ++step) {
    uint32_t roll = rng() % 100;
    // Keep the queue from growing without bound: then exits outnumber arrivals.
    if (m_.queue.size() > queue_cap && roll < enqueue_end) roll = enqueue_end + roll % (100 - enqueue_end);
    if (roll < 6) {
      AddNode(rng);
    } else if (roll < 10) {
      RemoveNode(rng);
    } else if (roll < 30) {
      TryPlace(rng);
    } else if (roll < enqueue_end) {
      Enqueue(rng);
    } else if (roll < 93) {
      Release(rng);
    } else {
      Cancel(rng);
    }
    if (HasFatalFailure()) FAIL() << "seed " << GetParam() << " step " << step;
    Check(absl::StrCat("seed ", GetParam(), " step ", step));
    if (HasFatalFailure()) return;
    max_queue = std::max(max_queue, m_.queue.size());
  }
  // The run must have exercised waiting, not just an idle cluster.
  std::printf(
      "seed %u: %d placed, %d try-place exhausted, %d never fit, %d granted from the queue, "
      "%d failed after node removal, %d lost with nodes, longest queue %zu\n",
      GetParam(), stats_.placed, stats_.exhausted, stats_.never, stats_.granted, stats_.failed, stats_.lost, max_queue);
  EXPECT_GT(max_queue, 5u);
  EXPECT_GT(stats_.granted, 100);
  EXPECT_GT(stats_.exhausted, 50);

  // Every waiting request is served once its room exists: let all processes
  // exit, one by one in id order, until nothing runs and nothing waits.
  if (m_.nodes.empty()) AddNode(rng);
  while (!m_.allocs.empty()) {
    Release(m_.allocs.begin()->first);
    Check(absl::StrCat("seed ", GetParam(), " drain"));
    if (HasFatalFailure()) return;
  }
  EXPECT_TRUE(m_.queue.empty()) << m_.queue.size() << " requests still wait on an idle cluster";
  EXPECT_TRUE(s_.Queue().empty());
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::Range<uint32_t>(1, 11));

}  // namespace
}  // namespace constellation::scheduler
