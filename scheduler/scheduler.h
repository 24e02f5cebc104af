#pragma once

// Resource accounting and placement for spawned processes: which node a
// process runs on, and which waiting request is served next. A plain library
// with no I/O, no clocks and no threads; the cluster master and local mode
// (the machine as a one-node cluster) drive it. docs/scheduler.md has the
// policy and the reasons for it. In short:
//  - Waiting requests are served in FIFO order. Each one reserves every node
//    whose capacity could hold it; a later request (waiting or TryPlace) may
//    only use nodes nobody ahead of it reserves. A large request is therefore
//    never starved by small ones, and small ones still run on nodes it could
//    never use.
//  - Among allowed nodes with room: most free CPU share, then most free memory
//    share, then smallest id ("spread").
//  - CPU is accounted in whole micro-cores, so sums never drift.
//
// Thread safety: none. A Scheduler is a single-threaded object; callers
// serialize every call (the master calls it from one thread or under its own
// lock).

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/core/internal_only.h"
#include "lib/core/resources.h"

namespace constellation::scheduler {

using AllocationId = uint64_t;  // 1, 2, 3, ... never reused; 0 is never valid
using TicketId = uint64_t;      // 1, 2, 3, ... never reused; 0 is never valid

// Room held by one placed process on one node, until Release() or RemoveNode().
struct Allocation {
  AllocationId id = 0;
  std::string node;
  Resources resources;  // as requested

  friend bool operator==(const Allocation&, const Allocation&) = default;
};

// The answer to a waiting request (Enqueue): placed, or failed because no node
// that is left could ever hold it (ResourceExhausted, after RemoveNode).
struct Grant {
  TicketId ticket = 0;
  absl::StatusOr<Allocation> allocation;
};

// A request still waiting, in queue order.
struct Waiting {
  TicketId ticket = 0;
  Resources resources;
};

// One node as the scheduler sees it. CPU amounts are whole micro-cores
// converted back to cores.
struct NodeState {
  std::string id;
  Resources capacity;
  Resources allocated;     // sum of its allocations
  size_t allocations = 0;  // how many
  bool reserved = false;   // a waiting request could use it: later requests may not
};

class Scheduler {
 public:
  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds a node (e.g. "10.0.0.2:9999") with the room it offers. Waiting
  // requests may be granted at once (TakeGrants). InvalidArgument for a
  // capacity without memory or CPU, AlreadyExists for a known id.
  absl::Status AddNode(absl::string_view id, Resources capacity);

  // Removes a node (it died or left) and frees every allocation on it, which
  // it returns in id order. Waiting requests that no remaining node could ever
  // hold fail (a Grant with ResourceExhausted); others may be granted.
  // NotFound for an unknown id.
  absl::StatusOr<std::vector<Allocation>> RemoveNode(absl::string_view id);

  // Places a request now or fails at once with ResourceExhausted: when no node
  // has room, or when the only nodes with room are reserved by waiting
  // requests (placing it there could delay them). InvalidArgument for a
  // negative or non-finite cpu.
  absl::StatusOr<Allocation> TryPlace(Resources request);

  // Queues a request; its Grant comes out of TakeGrants(), possibly at once.
  // ResourceExhausted at once, naming the largest node, when no node could
  // hold the request even empty. InvalidArgument as for TryPlace.
  absl::StatusOr<TicketId> Enqueue(Resources request);

  // Takes back an allocation that exists already on `node` (a restarted
  // master learns what its nodes run): placed there whatever the queue says.
  // FailedPrecondition when the node lacks the room (what it runs no longer
  // fits its capacity), NotFound for an unknown node, InvalidArgument as for
  // TryPlace.
  absl::StatusOr<Allocation> Adopt(absl::string_view node, Resources request);
  // Frees an allocation; waiting requests may be granted. NotFound for an id
  // that is not allocated (released already, or lost with its node).
  absl::Status Release(AllocationId id);

  // Withdraws a waiting request; later ones may be granted. NotFound when the
  // ticket is not waiting (unknown, granted or cancelled already).
  absl::Status Cancel(TicketId ticket);

  // Grants and failures of waiting requests since the last call, in the order
  // they were decided. Call it after every AddNode, RemoveNode, Enqueue,
  // Release and Cancel.
  std::vector<Grant> TakeGrants();

  // Introspection, for status pages and tests.
  std::vector<NodeState> Nodes() const;  // in id order
  std::vector<Waiting> Queue() const;    // in queue (FIFO) order
  size_t allocation_count() const { return allocations_.size(); }

  // Recomputes every node's sums from its allocations and aborts with a
  // message if they differ from the running sums or exceed the capacity.
  // O(allocations). Runs after every mutation in debug builds.
  void CheckInvariants() const;

 private:
  // CPU in integer micro-cores, so sums never drift.
  struct Amount {
    uint64_t mem = 0;
    int64_t ucpu = 0;
  };
  struct Node {
    Amount capacity;
    Amount used;
    std::set<AllocationId> allocations;
    bool reserved = false;
  };
  struct Placed {
    std::string node;
    Resources request;
    Amount amount;
  };
  struct Waiter {
    Resources request;
    Amount need;
  };

  static absl::StatusOr<Amount> ToAmount(const Resources& r, absl::string_view what);
  static bool Fits(const Amount& need, const Amount& room);
  bool FitsSomeNode(const Amount& need) const;
  absl::Status NeverFitsError(const Resources& request) const;
  // The best unreserved node with room for `need`, or nullptr.
  const std::string* ChooseNode(const Amount& need) const;
  Allocation Place(const std::string& node, const Resources& request, const Amount& amount);
  // Serves waiting requests in order; recomputes the reserved flags. After it,
  // no waiting request has an unreserved-to-it node with room.
  void Reevaluate();
  // Tries one waiting request against the current reservations: grants it
  // (true) or reserves the nodes it could use (false).
  bool Serve(TicketId ticket, const Resources& request, const Amount& need);
  void DebugCheck() const;

  std::map<std::string, Node, std::less<>> nodes_;  // id order: deterministic ties
  absl::flat_hash_map<AllocationId, Placed> allocations_;
  std::map<TicketId, Waiter> queue_;  // ticket order is arrival order
  size_t reserved_nodes_ = 0;
  std::vector<Grant> grants_;
  AllocationId next_allocation_ = 1;
  TicketId next_ticket_ = 1;
};

}  // namespace constellation::scheduler
