#pragma once

// Placement: the scheduler (scheduler/) made safe for many threads, with
// waits. A spawn that may wait (spawn(), a job's root) blocks in Place until
// the scheduler grants it room, until it can never be placed, or until its
// caller abandons it (the job ended, the master stops); Wake() makes waiters
// look again at what they wait for.
//
// Thread-safe: one lock guards the scheduler; nothing blocks while holding it
// except the wait itself.

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/metrics/master_metrics.h"
#include "scheduler/scheduler.h"

namespace constellation::daemon::master {

class Placement {
 public:
  // `metrics` (the queue's length and waits; must outlive this): null for none.
  explicit Placement(metrics::MasterMetrics* metrics = nullptr)
      : metrics_(metrics != nullptr ? metrics : &metrics::MasterMetrics::Unread()) {}

  absl::Status AddNode(const std::string& addr, Resources capacity);
  // Frees every allocation on the node (it is lost).
  void RemoveNode(const std::string& addr);
  bool HasNode(const std::string& addr) const;
  // Waits until some node is up; false if abandoned or shut down first.
  bool WaitForNodes(const std::function<bool()>& abandoned);

  // Places `request` now (wait=false: ResourceExhausted at once when nothing
  // has room) or when room frees up; Cancelled once `abandoned()` is true
  // (checked at each Wake and each change of the scheduler). While no node is
  // up (a restarted master before its nodes attach), a wait waits for one.
  absl::StatusOr<scheduler::Allocation> Place(const Resources& request, bool wait,
                                              const std::function<bool()>& abandoned);
  // An allocation a node already runs (a restarted master's nodes).
  absl::StatusOr<scheduler::Allocation> Adopt(const std::string& addr, const Resources& request);
  // Frees an allocation; unknown ids (lost with their node) are ignored.
  void Release(scheduler::AllocationId id);
  void Wake();
  // Ends every wait (Cancelled) for good.
  void Shutdown();

  std::vector<scheduler::NodeState> Nodes() const;
  // Whether some node (up or not) could ever hold `request`: else the error naming both sizes.
  absl::Status CouldEverFit(const Resources& request, const std::vector<Resources>& capacities) const;

 private:
  void CollectGrantsLocked();

  metrics::MasterMetrics* const metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  scheduler::Scheduler scheduler_;                          // guarded by mu_
  std::map<scheduler::TicketId, scheduler::Grant> grants_;  // guarded by mu_
  bool shutdown_ = false;                                   // guarded by mu_
};

}  // namespace constellation::daemon::master
