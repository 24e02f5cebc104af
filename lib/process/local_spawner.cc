#include "lib/process/local_spawner.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/process/proto_convert.h"

namespace constellation::internal {
namespace {

constexpr char kNode[] = "local";

}  // namespace

LocalSpawner::LocalSpawner(Resources capacity, Launcher launcher) : launcher_(std::move(launcher)) {
  absl::Status added = scheduler_.AddNode(kNode, capacity);
  if (!added.ok()) {
    // Capacities come from ParseCapacity/MachineCapacity, which never make an empty one.
    fprintf(stderr, "constellation: bad local capacity %s: %s\n", to_string(capacity).c_str(),
            added.ToString().c_str());
    abort();
  }
}

absl::Status LocalSpawner::AddRoot(const Pid& root, const Resources& resources) {
  absl::StatusOr<scheduler::Allocation> placed = scheduler_.TryPlace(resources);
  if (!placed.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("init() asks for ", to_string(resources), " but this machine offers ",
                     to_string(scheduler_.Nodes()[0].capacity), " (set CONSTELLATION_CAPACITY to change that)"));
  }
  allocations_[root] = placed->id;
  return absl::OkStatus();
}

void LocalSpawner::Request(const Pid& requester, const pb::SpawnRequest& request) {
  if (stopping_) return Fail(requester, request.id(), absl::UnavailableError("the program is being stopped"));
  Resources resources = FromProto(request.resources());
  if (!request.wait()) {
    absl::StatusOr<scheduler::Allocation> placed = scheduler_.TryPlace(resources);
    if (!placed.ok()) return Fail(requester, request.id(), placed.status());
    return Start(requester, request, placed->id);
  }
  absl::StatusOr<scheduler::TicketId> ticket = scheduler_.Enqueue(resources);
  if (!ticket.ok()) return Fail(requester, request.id(), ticket.status());
  tickets_[*ticket] = Pending{requester, request};
  ServeGrants();
  FailIfStuck();
}

void LocalSpawner::Exited(const Pid& pid) {
  if (stopping_) {
    if (auto it = allocations_.find(pid); it != allocations_.end()) {
      scheduler_.Release(it->second).IgnoreError();
      allocations_.erase(it);
    }
    return;
  }
  if (auto it = allocations_.find(pid); it != allocations_.end()) {
    scheduler_.Release(it->second).IgnoreError();
    allocations_.erase(it);
  }
  // A process killed while its spawn() waited: nobody is left to answer.
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    if (it->second.requester == pid) {
      scheduler_.Cancel(it->first).IgnoreError();
      it = tickets_.erase(it);
    } else {
      ++it;
    }
  }
  ServeGrants();
  FailIfStuck();
}

// Room comes back only when a process exits. When every process holding room
// is itself waiting in spawn(), none will: fail the waiting requests instead
// of hanging the program.
void LocalSpawner::FailIfStuck() {
  while (!tickets_.empty()) {
    std::set<Pid> waiting;
    for (const auto& [ticket, pending] : tickets_) waiting.insert(pending.requester);
    for (const auto& [pid, allocation] : allocations_) {
      if (!waiting.contains(pid)) return;
    }
    // Fail the oldest request only: withdrawing it may let the others through.
    auto oldest = tickets_.begin();
    scheduler_.Cancel(oldest->first).IgnoreError();
    Pending pending = std::move(oldest->second);
    tickets_.erase(oldest);
    Fail(pending.requester, pending.request.id(),
         absl::ResourceExhaustedError(
             absl::StrCat("spawn() would wait forever: ", to_string(FromProto(pending.request.resources())),
                          " does not fit, and every process holding room is itself waiting in spawn()")));
    ServeGrants();
  }
}

void LocalSpawner::Shutdown() {
  stopping_ = true;
  for (auto& [ticket, pending] : tickets_) {
    scheduler_.Cancel(ticket).IgnoreError();
    Fail(pending.requester, pending.request.id(), absl::UnavailableError("the program is being stopped"));
  }
  tickets_.clear();
}

void LocalSpawner::ServeGrants() {
  for (scheduler::Grant& grant : scheduler_.TakeGrants()) {
    auto it = tickets_.find(grant.ticket);
    if (it == tickets_.end()) {
      if (grant.allocation.ok()) scheduler_.Release(grant.allocation->id).IgnoreError();
      continue;
    }
    Pending pending = std::move(it->second);
    tickets_.erase(it);
    if (!grant.allocation.ok()) {
      Fail(pending.requester, pending.request.id(), grant.allocation.status());
    } else {
      Start(pending.requester, pending.request, grant.allocation->id);
    }
  }
}

void LocalSpawner::Start(const Pid& requester, const pb::SpawnRequest& request, scheduler::AllocationId allocation) {
  Resources resources = FromProto(request.resources());
  absl::StatusOr<Launched> launched = launcher_(requester, resources, request);
  if (!launched.ok()) {
    scheduler_.Release(allocation).IgnoreError();
    Fail(requester, request.id(), launched.status());
    ServeGrants();  // the room is free again: a waiting request may fit now
    return;
  }
  allocations_[launched->pid] = allocation;
  Outcome outcome{requester, {}, *launched, resources};
  outcome.reply.set_id(request.id());
  *outcome.reply.mutable_child() = ToProto(launched->pid);
  outcomes_.push_back(std::move(outcome));
}

void LocalSpawner::Fail(const Pid& requester, uint64_t id, const absl::Status& status) {
  Outcome outcome{requester, {}, std::nullopt, {}};
  outcome.reply.set_id(id);
  outcome.reply.set_code(static_cast<int>(status.code()));
  outcome.reply.set_message(std::string(status.message()));
  outcomes_.push_back(std::move(outcome));
}

std::vector<LocalSpawner::Outcome> LocalSpawner::TakeOutcomes() { return std::exchange(outcomes_, {}); }

}  // namespace constellation::internal
