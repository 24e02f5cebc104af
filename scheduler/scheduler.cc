#include "scheduler/scheduler.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"

namespace constellation::scheduler {
namespace {

constexpr double kMicro = 1e6;
// Far beyond any machine; keeps micro-core sums well inside int64.
constexpr double kMaxCpu = 1e9;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "constellation scheduler: broken invariant: %s\n", message.c_str());
  std::abort();
}

double Cores(int64_t ucpu) { return static_cast<double>(ucpu) / kMicro; }

}  // namespace

absl::StatusOr<Scheduler::Amount> Scheduler::ToAmount(const Resources& r, absl::string_view what) {
  if (!std::isfinite(r.cpu) || r.cpu < 0 || r.cpu > kMaxCpu) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has cpu ", r.cpu, ": expected a finite number of cores in [0, ", kMaxCpu, "]"));
  }
  return Amount{r.mem, static_cast<int64_t>(std::llround(r.cpu * kMicro))};
}

bool Scheduler::Fits(const Amount& need, const Amount& room) { return need.mem <= room.mem && need.ucpu <= room.ucpu; }

bool Scheduler::FitsSomeNode(const Amount& need) const {
  for (const auto& [id, node] : nodes_) {
    if (Fits(need, node.capacity)) return true;
  }
  return false;
}

absl::Status Scheduler::NeverFitsError(const Resources& request) const {
  std::string why;
  if (nodes_.empty()) {
    why = "the cluster has no nodes";
  } else {
    // "Largest" has two meanings with two resources; name both when they differ.
    auto most_mem = nodes_.begin(), most_cpu = nodes_.begin();
    for (auto it = nodes_.begin(); it != nodes_.end(); ++it) {
      const Amount& c = it->second.capacity;
      const Amount& m = most_mem->second.capacity;
      const Amount& p = most_cpu->second.capacity;
      if (c.mem > m.mem || (c.mem == m.mem && c.ucpu > m.ucpu)) most_mem = it;
      if (c.ucpu > p.ucpu || (c.ucpu == p.ucpu && c.mem > p.mem)) most_cpu = it;
    }
    auto describe = [](const auto& it) {
      return absl::StrCat("\"", it->first, "\" (mem ", format_mem(it->second.capacity.mem), ", cpu ",
                          Cores(it->second.capacity.ucpu), ")");
    };
    why = most_mem == most_cpu ? absl::StrCat("the largest node is ", describe(most_mem))
                               : absl::StrCat("the node with the most memory is ", describe(most_mem),
                                              " and the one with the most cores is ", describe(most_cpu));
  }
  return absl::ResourceExhaustedError(absl::StrCat("request for ", to_string(request), " can never be placed: ", why));
}

const std::string* Scheduler::ChooseNode(const Amount& need) const {
  // Spread: the node with the largest free share of its CPU, then of its
  // memory; ties go to the smallest id (the first seen). Shares are compared
  // exactly by cross-multiplying.
  const std::string* best_id = nullptr;
  const Node* best = nullptr;
  for (const auto& [id, node] : nodes_) {
    if (node.reserved) continue;
    Amount free{node.capacity.mem - node.used.mem, node.capacity.ucpu - node.used.ucpu};
    if (!Fits(need, free)) continue;
    if (best != nullptr) {
      Amount best_free{best->capacity.mem - best->used.mem, best->capacity.ucpu - best->used.ucpu};
      __int128 cpu_a = static_cast<__int128>(free.ucpu) * best->capacity.ucpu;
      __int128 cpu_b = static_cast<__int128>(best_free.ucpu) * node.capacity.ucpu;
      if (cpu_a < cpu_b) continue;
      if (cpu_a == cpu_b) {
        unsigned __int128 mem_a = static_cast<unsigned __int128>(free.mem) * best->capacity.mem;
        unsigned __int128 mem_b = static_cast<unsigned __int128>(best_free.mem) * node.capacity.mem;
        if (mem_a <= mem_b) continue;
      }
    }
    best_id = &id;
    best = &node;
  }
  return best_id;
}

Allocation Scheduler::Place(const std::string& node_id, const Resources& request, const Amount& amount) {
  Node& node = nodes_.at(node_id);
  node.used.mem += amount.mem;
  node.used.ucpu += amount.ucpu;
  if (node.used.mem > node.capacity.mem || node.used.ucpu > node.capacity.ucpu) {
    Die(absl::StrCat("node \"", node_id, "\" over-committed"));
  }
  AllocationId id = next_allocation_++;
  node.allocations.insert(id);
  allocations_.emplace(id, Placed{node_id, request, amount});
  return Allocation{id, node_id, request};
}

bool Scheduler::Serve(TicketId ticket, const Resources& request, const Amount& need) {
  if (const std::string* node = ChooseNode(need)) {
    grants_.push_back(Grant{ticket, Place(*node, request, need)});
    return true;
  }
  for (auto& [id, node] : nodes_) {
    if (!node.reserved && Fits(need, node.capacity)) {
      node.reserved = true;
      ++reserved_nodes_;
    }
  }
  return false;
}

void Scheduler::Reevaluate() {
  for (auto& [id, node] : nodes_) node.reserved = false;
  reserved_nodes_ = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    // Every node is reserved by someone ahead: nobody further back can move.
    if (reserved_nodes_ == nodes_.size()) break;
    if (Serve(it->first, it->second.request, it->second.need)) {
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::Status Scheduler::AddNode(absl::string_view id, Resources capacity) {
  absl::StatusOr<Amount> amount = ToAmount(capacity, absl::StrCat("node \"", id, "\""));
  if (!amount.ok()) return amount.status();
  if (amount->mem == 0 || amount->ucpu == 0) {
    return absl::InvalidArgumentError(absl::StrCat("node \"", id, "\" has no room: ", to_string(capacity)));
  }
  if (!nodes_.try_emplace(std::string(id), Node{*amount}).second) {
    return absl::AlreadyExistsError(absl::StrCat("node \"", id, "\" is already known"));
  }
  Reevaluate();
  DebugCheck();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Allocation>> Scheduler::RemoveNode(absl::string_view id) {
  auto node = nodes_.find(id);
  if (node == nodes_.end()) return absl::NotFoundError(absl::StrCat("no node \"", id, "\""));
  std::vector<Allocation> lost;
  for (AllocationId a : node->second.allocations) {
    auto placed = allocations_.find(a);
    lost.push_back(Allocation{a, node->first, placed->second.request});
    allocations_.erase(placed);
  }
  nodes_.erase(node);
  // Waiting requests that nothing left could hold fail now, rather than wait
  // for a node that may never come back; they come first in TakeGrants().
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (FitsSomeNode(it->second.need)) {
      ++it;
      continue;
    }
    grants_.push_back(Grant{it->first, NeverFitsError(it->second.request)});
    it = queue_.erase(it);
  }
  Reevaluate();
  DebugCheck();
  return lost;
}

absl::StatusOr<Allocation> Scheduler::TryPlace(Resources request) {
  absl::StatusOr<Amount> need = ToAmount(request, "request");
  if (!need.ok()) return need.status();
  if (!FitsSomeNode(*need)) return NeverFitsError(request);
  // Only unreserved nodes: no waiting request could ever use them, so placing
  // here cannot delay any of them, and the reservations stay as they are.
  const std::string* node = ChooseNode(*need);
  if (node == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "no node has room for ", to_string(request), " now",
        queue_.empty() ? "" : absl::StrCat(" (", queue_.size(), " earlier requests are waiting for room)")));
  }
  Allocation allocation = Place(*node, request, *need);
  DebugCheck();
  return allocation;
}

absl::StatusOr<Allocation> Scheduler::Adopt(absl::string_view node_id, Resources request) {
  absl::StatusOr<Amount> need = ToAmount(request, "request");
  if (!need.ok()) return need.status();
  auto it = nodes_.find(std::string(node_id));
  if (it == nodes_.end()) return absl::NotFoundError(absl::StrCat("no node \"", node_id, "\""));
  const Node& node = it->second;
  Amount free{node.capacity.mem - node.used.mem, node.capacity.ucpu - node.used.ucpu};
  if (!Fits(*need, free)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node \"", node_id, "\" has no room left for ", to_string(request), " it runs"));
  }
  Allocation allocation = Place(it->first, request, *need);
  // Room taken outside the queue's order: a waiting request may now fit
  // nowhere it was promised, or a reservation may be moot; decide again.
  Reevaluate();
  DebugCheck();
  return allocation;
}

absl::StatusOr<TicketId> Scheduler::Enqueue(Resources request) {
  absl::StatusOr<Amount> need = ToAmount(request, "request");
  if (!need.ok()) return need.status();
  if (!FitsSomeNode(*need)) return NeverFitsError(request);
  TicketId ticket = next_ticket_++;
  // The queue is settled, so only the newcomer at its tail can change anything;
  // once every node is reserved it waits without looking.
  if (reserved_nodes_ == nodes_.size() || !Serve(ticket, request, *need)) {
    queue_.emplace(ticket, Waiter{request, *need});
  }
  DebugCheck();
  return ticket;
}

absl::Status Scheduler::Release(AllocationId id) {
  auto placed = allocations_.find(id);
  if (placed == allocations_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no allocation ", id, " (never made, released already, or lost with its node)"));
  }
  Node& node = nodes_.at(placed->second.node);
  node.used.mem -= placed->second.amount.mem;
  node.used.ucpu -= placed->second.amount.ucpu;
  node.allocations.erase(id);
  allocations_.erase(placed);
  if (!queue_.empty()) Reevaluate();
  DebugCheck();
  return absl::OkStatus();
}

absl::Status Scheduler::Cancel(TicketId ticket) {
  if (queue_.erase(ticket) == 0) {
    return absl::NotFoundError(absl::StrCat("ticket ", ticket, " is not waiting (unknown, granted or cancelled)"));
  }
  Reevaluate();
  DebugCheck();
  return absl::OkStatus();
}

std::vector<Grant> Scheduler::TakeGrants() { return std::exchange(grants_, {}); }

std::vector<NodeState> Scheduler::Nodes() const {
  std::vector<NodeState> out;
  for (const auto& [id, node] : nodes_) {
    out.push_back(NodeState{id, Resources{node.capacity.mem, Cores(node.capacity.ucpu)},
                            Resources{node.used.mem, Cores(node.used.ucpu)}, node.allocations.size(), node.reserved});
  }
  return out;
}

std::vector<Waiting> Scheduler::Queue() const {
  std::vector<Waiting> out;
  for (const auto& [ticket, waiter] : queue_) out.push_back(Waiting{ticket, waiter.request});
  return out;
}

void Scheduler::CheckInvariants() const {
  size_t counted = 0, reserved = 0;
  for (const auto& [id, node] : nodes_) {
    Amount sum;
    for (AllocationId a : node.allocations) {
      auto placed = allocations_.find(a);
      if (placed == allocations_.end() || placed->second.node != id) {
        Die(absl::StrCat("node \"", id, "\" lists allocation ", a, " that is not on it"));
      }
      sum.mem += placed->second.amount.mem;
      sum.ucpu += placed->second.amount.ucpu;
    }
    counted += node.allocations.size();
    if (sum.mem != node.used.mem || sum.ucpu != node.used.ucpu) {
      Die(absl::StrCat("node \"", id, "\" accounts mem ", node.used.mem, ", ucpu ", node.used.ucpu,
                       " but its allocations sum to mem ", sum.mem, ", ucpu ", sum.ucpu));
    }
    if (!Fits(node.used, node.capacity)) Die(absl::StrCat("node \"", id, "\" over-committed"));
    reserved += node.reserved;
  }
  if (counted != allocations_.size()) {
    Die(absl::StrCat(allocations_.size(), " allocations, but nodes list ", counted));
  }
  if (reserved != reserved_nodes_) Die("reserved node count out of date");
}

void Scheduler::DebugCheck() const {
#ifndef NDEBUG
  CheckInvariants();
#endif
}

}  // namespace constellation::scheduler
