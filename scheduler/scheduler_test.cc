#include "scheduler/scheduler.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace constellation::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Resources R(uint64_t mem, double cpu) { return Resources{mem, cpu}; }

std::string PlaceOn(Scheduler& s, Resources r) {
  absl::StatusOr<Allocation> a = s.TryPlace(r);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? a->node : "";
}

// The tickets granted since the last call, failing on any failure.
std::vector<TicketId> Granted(Scheduler& s) {
  std::vector<TicketId> out;
  for (const Grant& g : s.TakeGrants()) {
    EXPECT_TRUE(g.allocation.ok()) << g.allocation.status();
    out.push_back(g.ticket);
  }
  return out;
}

TicketId Enqueue(Scheduler& s, Resources r) {
  absl::StatusOr<TicketId> t = s.Enqueue(r);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : 0;
}

TEST(Scheduler, SpreadsByFreeCpuShareThenMemoryShareThenId) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("b", R(8 * kGiB, 2)).ok());
  ASSERT_TRUE(s.AddNode("a", R(8 * kGiB, 4)).ok());
  EXPECT_EQ(PlaceOn(s, R(kGiB, 1)), "a");      // both wholly free: id decides
  EXPECT_EQ(PlaceOn(s, R(kGiB, 1)), "b");      // cpu free: a 3/4, b 2/2
  EXPECT_EQ(PlaceOn(s, R(kGiB, 1)), "a");      // a 3/4, b 1/2
  EXPECT_EQ(PlaceOn(s, R(3 * kGiB, 0)), "b");  // a 2/4 = b 1/2; memory free: a 6/8, b 7/8
  EXPECT_EQ(PlaceOn(s, R(kGiB, 0)), "a");      // a 6/8, b 4/8
  EXPECT_EQ(PlaceOn(s, R(kGiB, 0.5)), "a");    // a 5/8, b 4/8
  EXPECT_EQ(PlaceOn(s, R(kGiB, 0.25)), "b");   // cpu: a 1.5/4, b 1/2 (memory not looked at)
  EXPECT_EQ(PlaceOn(s, R(0, 0.25)), "a");      // a 1.5/4 = b 0.75/2; memory a 4/8, b 3/8
}

TEST(Scheduler, SkipsNodesWithoutRoomInEitherResource) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(kGiB, 8)).ok());
  ASSERT_TRUE(s.AddNode("b", R(8 * kGiB, 1)).ok());
  EXPECT_EQ(PlaceOn(s, R(2 * kGiB, 0.5)), "b");  // a has the cores but not the memory
  EXPECT_EQ(PlaceOn(s, R(512 * kMiB, 2)), "a");  // b has the memory but not the cores
}

TEST(Scheduler, TryPlaceFailsAtOnceWhenNothingHasRoom) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(kGiB, 1)).ok());
  ASSERT_TRUE(s.TryPlace(R(kGiB, 1)).ok());
  absl::StatusOr<Allocation> again = s.TryPlace(R(kGiB, 1));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(again.status().message(), HasSubstr("no node has room"));
  EXPECT_THAT(s.Queue(), IsEmpty());  // TryPlace never queues
}

TEST(Scheduler, RequestThatCanNeverFitFailsNamingTheLargestNode) {
  Scheduler s;
  EXPECT_THAT(s.Enqueue(R(kGiB, 1)).status().message(), HasSubstr("no nodes"));
  ASSERT_TRUE(s.AddNode("small", R(2 * kGiB, 2)).ok());
  ASSERT_TRUE(s.AddNode("big", R(8 * kGiB, 4)).ok());
  absl::StatusOr<TicketId> t = s.Enqueue(R(16 * kGiB, 1));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(t.status().message(), HasSubstr("can never be placed"));
  EXPECT_THAT(t.status().message(), HasSubstr("\"big\" (mem 8 GiB, cpu 4)"));
  EXPECT_EQ(s.TryPlace(R(16 * kGiB, 1)).status().code(), absl::StatusCode::kResourceExhausted);

  // Enough memory on one node and enough cores on another is not enough.
  ASSERT_TRUE(s.AddNode("cores", R(kGiB, 32)).ok());
  t = s.Enqueue(R(4 * kGiB, 8));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(t.status().message(), HasSubstr("most memory is \"big\""));
  EXPECT_THAT(t.status().message(), HasSubstr("most cores is \"cores\" (mem 1 GiB, cpu 32)"));
  EXPECT_THAT(s.Queue(), IsEmpty());
}

TEST(Scheduler, RejectsBadInput) {
  Scheduler s;
  EXPECT_EQ(s.AddNode("a", R(0, 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.AddNode("a", R(kGiB, 0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.AddNode("a", R(kGiB, -1)).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(s.AddNode("a", R(kGiB, 1)).ok());
  EXPECT_EQ(s.AddNode("a", R(kGiB, 1)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.TryPlace(R(1, -0.5)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Enqueue(R(1, std::nan(""))).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.RemoveNode("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(s.TryPlace(R(0, 0)).ok());  // asks for nothing: fits anywhere
}

TEST(Scheduler, EnqueueIsGrantedAtOnceWhenThereIsRoom) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(kGiB, 1)).ok());
  TicketId t = Enqueue(s, R(kGiB, 1));
  std::vector<Grant> grants = s.TakeGrants();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].ticket, t);
  ASSERT_TRUE(grants[0].allocation.ok());
  EXPECT_EQ(grants[0].allocation->node, "a");
  EXPECT_EQ(grants[0].allocation->resources, R(kGiB, 1));
  EXPECT_THAT(s.TakeGrants(), IsEmpty());
}

TEST(Scheduler, ServesWaitingRequestsInFifoOrder) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(kGiB, 1)).ok());
  std::vector<AllocationId> held;
  for (int i = 0; i < 3; ++i) held.push_back(s.TryPlace(R(kGiB / 4, 0.25))->id);
  TicketId t1 = Enqueue(s, R(kGiB / 2, 0.5));
  TicketId t2 = Enqueue(s, R(kGiB / 4, 0.25));
  TicketId t3 = Enqueue(s, R(kGiB / 4, 0.25));
  // A quarter is free: t2 would fit, but t1 is first and needs that node.
  EXPECT_THAT(Granted(s), IsEmpty());
  ASSERT_TRUE(s.Release(held[0]).ok());
  EXPECT_THAT(Granted(s), ElementsAre(t1));
  ASSERT_TRUE(s.Release(held[1]).ok());
  EXPECT_THAT(Granted(s), ElementsAre(t2));
  ASSERT_TRUE(s.Release(held[2]).ok());
  EXPECT_THAT(Granted(s), ElementsAre(t3));
}

TEST(Scheduler, LargeRequestIsNotStarvedByAStreamOfSmallOnes) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(4 * kGiB, 4)).ok());
  std::vector<AllocationId> small;
  for (int i = 0; i < 4; ++i) small.push_back(s.TryPlace(R(kGiB, 1))->id);
  TicketId big = Enqueue(s, R(4 * kGiB, 4));
  // As each small process exits, another small one arrives; none may take the room.
  std::vector<TicketId> later;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(s.TryPlace(R(kGiB, 1)).status().code(), absl::StatusCode::kResourceExhausted);
    later.push_back(Enqueue(s, R(kGiB, 1)));
    ASSERT_TRUE(s.Release(small[i]).ok());
    std::vector<Grant> grants = s.TakeGrants();
    if (i < 3) {
      EXPECT_THAT(grants, IsEmpty()) << "after release " << i;
    } else {
      ASSERT_EQ(grants.size(), 1u);
      EXPECT_EQ(grants[0].ticket, big);
      ASSERT_TRUE(grants[0].allocation.ok());
      ASSERT_TRUE(s.Release(grants[0].allocation->id).ok());
    }
  }
  EXPECT_EQ(Granted(s), later);  // then the small ones, in order
}

TEST(Scheduler, LaterRequestsMayUseNodesTheWaitingOnesCouldNeverUse) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("big", R(8 * kGiB, 4)).ok());
  ASSERT_TRUE(s.AddNode("small", R(kGiB, 1)).ok());
  AllocationId filler = s.TryPlace(R(4 * kGiB, 2))->id;  // on big
  TicketId head = Enqueue(s, R(6 * kGiB, 1));            // only big can ever hold it
  EXPECT_THAT(Granted(s), IsEmpty());
  EXPECT_TRUE(s.Nodes()[0].reserved);
  EXPECT_FALSE(s.Nodes()[1].reserved);
  // Small requests run on "small", never on "big" (which has 4 GiB free).
  EXPECT_EQ(PlaceOn(s, R(kGiB / 2, 0.5)), "small");
  TicketId next = Enqueue(s, R(kGiB / 2, 0.5));
  std::vector<Grant> grants = s.TakeGrants();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].ticket, next);
  EXPECT_EQ(grants[0].allocation->node, "small");
  EXPECT_EQ(s.TryPlace(R(kGiB / 2, 0.5)).status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(s.Release(filler).ok());
  EXPECT_THAT(Granted(s), ElementsAre(head));
}

TEST(Scheduler, RemovingANodeFreesAndReportsItsAllocations) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(4 * kGiB, 4)).ok());
  ASSERT_TRUE(s.AddNode("b", R(4 * kGiB, 2)).ok());
  Allocation a1 = *s.TryPlace(R(kGiB, 1));  // a
  Allocation b1 = *s.TryPlace(R(kGiB, 1));  // b
  Allocation a2 = *s.TryPlace(R(kGiB, 1));  // a
  ASSERT_EQ(a1.node, "a");
  ASSERT_EQ(b1.node, "b");
  ASSERT_EQ(a2.node, "a");
  absl::StatusOr<std::vector<Allocation>> lost = s.RemoveNode("a");
  ASSERT_TRUE(lost.ok());
  EXPECT_THAT(*lost, ElementsAre(a1, a2));
  EXPECT_EQ(s.allocation_count(), 1u);
  EXPECT_EQ(s.Release(a1.id).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(s.Release(b1.id).ok());
  ASSERT_EQ(s.Nodes().size(), 1u);
  EXPECT_EQ(s.Nodes()[0].allocated, R(0, 0));
  // The id may come back, empty.
  ASSERT_TRUE(s.AddNode("a", R(4 * kGiB, 4)).ok());
  EXPECT_EQ(s.Nodes()[0].allocations, 0u);
}

TEST(Scheduler, RemovingANodeFailsWaitersNothingLeftCanHold) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("big", R(8 * kGiB, 4)).ok());
  ASSERT_TRUE(s.AddNode("mid", R(4 * kGiB, 4)).ok());
  ASSERT_TRUE(s.TryPlace(R(8 * kGiB, 1)).ok());
  AllocationId on_mid = s.TryPlace(R(4 * kGiB, 1))->id;
  TicketId huge = Enqueue(s, R(6 * kGiB, 1));  // only big could hold it
  TicketId two = Enqueue(s, R(2 * kGiB, 1));   // big is reserved, mid is full
  EXPECT_THAT(Granted(s), IsEmpty());
  ASSERT_TRUE(s.RemoveNode("big").ok());
  std::vector<Grant> grants = s.TakeGrants();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].ticket, huge);
  EXPECT_EQ(grants[0].allocation.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(grants[0].allocation.status().message(), HasSubstr("\"mid\" (mem 4 GiB, cpu 4)"));
  ASSERT_TRUE(s.Release(on_mid).ok());
  EXPECT_THAT(Granted(s), ElementsAre(two));
}

TEST(Scheduler, AddingANodeServesWaiters) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(kGiB, 1)).ok());
  ASSERT_TRUE(s.TryPlace(R(kGiB, 1)).ok());
  TicketId t1 = Enqueue(s, R(kGiB, 1));
  TicketId t2 = Enqueue(s, R(kGiB, 1));
  ASSERT_TRUE(s.AddNode("b", R(2 * kGiB, 2)).ok());
  std::vector<Grant> grants = s.TakeGrants();
  ASSERT_EQ(grants.size(), 2u);
  EXPECT_EQ(grants[0].ticket, t1);
  EXPECT_EQ(grants[1].ticket, t2);
  EXPECT_EQ(grants[0].allocation->node, "b");
  EXPECT_EQ(grants[1].allocation->node, "b");
}

TEST(Scheduler, CancellingTheHeadLetsTheNextOneIn) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(4 * kGiB, 4)).ok());
  ASSERT_TRUE(s.TryPlace(R(2 * kGiB, 2)).ok());
  TicketId big = Enqueue(s, R(4 * kGiB, 4));
  TicketId small = Enqueue(s, R(kGiB, 1));  // room exists, but the head has the node
  EXPECT_THAT(Granted(s), IsEmpty());
  ASSERT_TRUE(s.Cancel(big).ok());
  EXPECT_THAT(Granted(s), ElementsAre(small));
  EXPECT_EQ(s.Cancel(big).code(), absl::StatusCode::kNotFound);    // cancelled already
  EXPECT_EQ(s.Cancel(small).code(), absl::StatusCode::kNotFound);  // granted
  EXPECT_EQ(s.Cancel(12345).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.Queue(), IsEmpty());
}

TEST(Scheduler, ReleasingAnUnknownAllocationIsAnError) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(kGiB, 1)).ok());
  EXPECT_EQ(s.Release(0).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.Release(99).code(), absl::StatusCode::kNotFound);
  AllocationId id = s.TryPlace(R(kGiB, 1))->id;
  ASSERT_TRUE(s.Release(id).ok());
  absl::Status again = s.Release(id);
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(again.message(), HasSubstr("released already"));
}

TEST(Scheduler, CpuAccountingDoesNotDrift) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(64 * kGiB, 1)).ok());
  std::vector<AllocationId> ids;
  for (int i = 0; i < 16; ++i) ids.push_back(s.TryPlace(Resources{})->id);  // 16 x 1/16 core
  EXPECT_FALSE(s.TryPlace(Resources{}).ok());
  for (AllocationId id : ids) ASSERT_TRUE(s.Release(id).ok());
  // 0.1 is not exact in binary: ten of them must still fill one core exactly,
  // however many times they come and go.
  for (int round = 0; round < 10000; ++round) {
    ids.clear();
    for (int i = 0; i < 10; ++i) {
      absl::StatusOr<Allocation> a = s.TryPlace(R(kMiB, 0.1));
      ASSERT_TRUE(a.ok()) << "round " << round << ": " << a.status();
      ids.push_back(a->id);
    }
    ASSERT_FALSE(s.TryPlace(R(kMiB, 0.1)).ok()) << "round " << round;
    for (AllocationId id : ids) ASSERT_TRUE(s.Release(id).ok());
  }
  EXPECT_EQ(s.Nodes()[0].allocated, R(0, 0));
  s.CheckInvariants();
}

// Local mode: the machine is a one-node cluster.
TEST(Scheduler, LocalModeTryFailsBeyondCapacityAndSpawnWaitsForASibling) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("local", R(2 * kGiB, 2)).ok());
  Allocation root = *s.TryPlace(R(kGiB, 1));
  Allocation sibling = *s.TryPlace(R(kGiB, 1));
  EXPECT_EQ(s.TryPlace(Resources{}).status().code(), absl::StatusCode::kResourceExhausted);
  TicketId waiting = Enqueue(s, Resources{});
  EXPECT_THAT(Granted(s), IsEmpty());
  ASSERT_TRUE(s.Release(sibling.id).ok());
  EXPECT_THAT(Granted(s), ElementsAre(waiting));
  EXPECT_EQ(root.node, "local");
}

// A restarted master takes back what its nodes run: on the named node,
// ahead of the queue, and never beyond a node's capacity.
TEST(Scheduler, AdoptPlacesOnTheNamedNodeAndChecksItsRoom) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(4, 4)).ok());
  ASSERT_TRUE(s.AddNode("b", R(4, 4)).ok());
  absl::StatusOr<Allocation> adopted = s.Adopt("b", R(3, 1));
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(adopted->node, "b");
  EXPECT_EQ(PlaceOn(s, R(2, 1)), "a") << "b has 1 left";
  absl::StatusOr<Allocation> too_big = s.Adopt("b", R(2, 1));
  EXPECT_TRUE(absl::IsFailedPrecondition(too_big.status())) << too_big.status();
  EXPECT_TRUE(absl::IsNotFound(s.Adopt("c", R(1, 1)).status()));
  EXPECT_TRUE(s.Release(adopted->id).ok());
  EXPECT_EQ(PlaceOn(s, R(4, 1)), "b");
}

// Room adopted while a request waits is room it no longer gets.
TEST(Scheduler, AdoptWhileARequestWaitsKeepsTheQueueConsistent) {
  Scheduler s;
  ASSERT_TRUE(s.AddNode("a", R(4, 4)).ok());
  absl::StatusOr<Allocation> first = s.TryPlace(R(3, 1));
  ASSERT_TRUE(first.ok());
  TicketId waiting = Enqueue(s, R(3, 1));
  EXPECT_THAT(Granted(s), IsEmpty());
  ASSERT_TRUE(s.Adopt("a", R(1, 1)).ok());
  ASSERT_TRUE(s.Release(first->id).ok());
  EXPECT_THAT(Granted(s), ElementsAre(waiting)) << "3 of 4 free after the release";
  s.CheckInvariants();
}

}  // namespace
}  // namespace constellation::scheduler
