#include "daemon/master/placement.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace constellation::daemon::master {

absl::Status Placement::AddNode(const std::string& addr, Resources capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status added = scheduler_.AddNode(addr, capacity);
  CollectGrantsLocked();
  return added;
}

void Placement::RemoveNode(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  scheduler_.RemoveNode(addr).IgnoreError();  // unknown: never added
  CollectGrantsLocked();
}

bool Placement::WaitForNodes(const std::function<bool()>& abandoned) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return shutdown_ || abandoned() || !scheduler_.Nodes().empty(); });
  return !shutdown_ && !abandoned();
}

bool Placement::HasNode(const std::string& addr) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const scheduler::NodeState& node : scheduler_.Nodes()) {
    if (node.id == addr) return true;
  }
  return false;
}

absl::StatusOr<scheduler::Allocation> Placement::Place(const Resources& request, bool wait,
                                                       const std::function<bool()>& abandoned) {
  const auto asked = std::chrono::steady_clock::now();  // for the wait's histogram
  auto placed = [&] {
    if (wait) metrics_->Placed(std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count());
  };
  std::unique_lock<std::mutex> lock(mu_);
  if (wait) {
    // No node to place on or queue for yet: wait for one to come up.
    cv_.wait(lock, [&] { return shutdown_ || abandoned() || !scheduler_.Nodes().empty(); });
  }
  if (shutdown_) return absl::CancelledError("the master is stopping");
  if (abandoned()) return absl::CancelledError("the job ended while the spawn waited for a node");
  if (!wait && scheduler_.Nodes().empty()) return absl::UnavailableError("no node is up");
  absl::StatusOr<scheduler::Allocation> now = scheduler_.TryPlace(request);
  if (now.ok()) placed();
  if (!wait || now.ok() || !absl::IsResourceExhausted(now.status())) return now;
  absl::StatusOr<scheduler::TicketId> ticket = scheduler_.Enqueue(request);
  if (!ticket.ok()) return ticket.status();
  metrics_->Enqueued();
  CollectGrantsLocked();
  while (true) {
    auto grant = grants_.find(*ticket);
    if (grant != grants_.end()) {
      absl::StatusOr<scheduler::Allocation> allocation = std::move(grant->second.allocation);
      grants_.erase(grant);
      metrics_->Dequeued();
      if (allocation.ok()) placed();
      return allocation;
    }
    if (shutdown_ || abandoned()) {
      scheduler_.Cancel(*ticket).IgnoreError();
      metrics_->Dequeued();
      CollectGrantsLocked();
      return absl::CancelledError(shutdown_ ? "the master is stopping"
                                            : "the job ended while the spawn waited for room");
    }
    cv_.wait(lock);
  }
}

absl::StatusOr<scheduler::Allocation> Placement::Adopt(const std::string& addr, const Resources& request) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<scheduler::Allocation> adopted = scheduler_.Adopt(addr, request);
  CollectGrantsLocked();
  return adopted;
}

void Placement::Release(scheduler::AllocationId id) {
  std::lock_guard<std::mutex> lock(mu_);
  scheduler_.Release(id).IgnoreError();
  CollectGrantsLocked();
}

void Placement::Wake() {
  std::lock_guard<std::mutex> lock(mu_);  // orders the waiter's check after the caller's change
  cv_.notify_all();
}

void Placement::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

std::vector<scheduler::NodeState> Placement::Nodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scheduler_.Nodes();
}

absl::Status Placement::CouldEverFit(const Resources& request, const std::vector<Resources>& capacities) const {
  Resources largest{0, 0};
  for (const Resources& capacity : capacities) {
    if (request.mem <= capacity.mem && request.cpu <= capacity.cpu) return absl::OkStatus();
    if (capacity.mem > largest.mem || (capacity.mem == largest.mem && capacity.cpu > largest.cpu)) largest = capacity;
  }
  return absl::ResourceExhaustedError(absl::StrCat("the job asks for ", to_string(request),
                                                   " but the largest node of the cluster has ", to_string(largest)));
}

void Placement::CollectGrantsLocked() {
  for (scheduler::Grant& grant : scheduler_.TakeGrants()) grants_[grant.ticket] = std::move(grant);
  cv_.notify_all();
}

}  // namespace constellation::daemon::master
