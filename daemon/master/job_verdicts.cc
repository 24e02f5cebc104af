// JobManager: the verdicts on processes that are gone, for the processes that
// hold channels to them: Master.Watch's answers and the broadcast to nodes
// (GoneBroadcast), so that a channel to a process that exited or whose node
// was lost ends with that reason instead of waiting.
#include "absl/strings/str_cat.h"
#include "daemon/master/job_manager.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::ToProto;

void JobManager::VerdictLocked(ActiveJob& job, const Pid& pid, pb::ProcessGone gone) {
  *gone.mutable_pid() = ToProto(pid);
  auto [it, added] = job.verdicts.emplace(pid, std::move(gone));
  if (!added) return;  // said already (a node-lost verdict, then the exit reported for it)
  job.unresolved.erase(pid);
  for (const std::string& node : TargetsLocked(job)) parts_.gone->Queue(node, job.record.id, it->second);
}

std::set<std::string> JobManager::TargetsLocked(const ActiveJob& job) {
  std::set<std::string> nodes;
  for (const auto& [pid, live] : job.live) nodes.insert(live.node);
  for (const auto& [node, count] : job.launching_on) nodes.insert(node);
  // A node not up gets nothing: it asks again (Master.Watch) when it attaches.
  std::erase_if(nodes, [this](const std::string& node) { return !progress_.contains(node); });
  return nodes;
}

uint64_t JobManager::LaunchStartsLocked(ActiveJob& job, const std::string& node) {
  ++job.launching_on[node];
  job.ran_on.insert(node);
  uint64_t launch = job.next_launch++;
  job.launches_in_flight.insert(launch);
  return launch;
}

void JobManager::LaunchSettledLocked(ActiveJob& job, const std::string& node, uint64_t launch) {
  if (--job.launching_on[node] <= 0) job.launching_on.erase(node);
  job.launches_in_flight.erase(launch);
  settled_.notify_all();  // Spawn() may wait for this launch's record
  if (!job.launching_on.empty() || job.unresolved.empty()) return;
  // Every launch has settled: a pid watched then and still unknown is no process of the job.
  std::set<Pid> unresolved = std::move(job.unresolved);
  job.unresolved.clear();
  for (const Pid& pid : unresolved) {
    if (job.live.contains(pid) || job.verdicts.contains(pid)) continue;
    pb::ProcessGone none;
    none.set_no_process(true);
    VerdictLocked(job, pid, std::move(none));
  }
}

absl::StatusOr<pb::GoneBatch> JobManager::Watch(uint64_t id, const std::vector<Pid>& pids) {
  if (pids.size() > kMaxWatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("a watch request names ", pids.size(), " processes; at most ", kMaxWatch));
  }
  pb::GoneBatch answer;
  answer.set_deployment(id);
  auto no_process = [&](const Pid& pid) {
    pb::ProcessGone* gone = answer.add_gone();
    *gone->mutable_pid() = ToProto(pid);
    gone->set_no_process(true);
  };
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(id);
  for (const Pid& pid : pids) {
    if (it == active_.end()) {
      no_process(pid);  // the job is over (all its processes are) or was never
      continue;
    }
    ActiveJob& job = it->second;
    if (auto verdict = job.verdicts.find(pid); verdict != job.verdicts.end()) {
      *answer.add_gone() = verdict->second;
    } else if (job.live.contains(pid)) {
      continue;  // alive: its end is broadcast
    } else if (!job.launching_on.empty() && job.unresolved.size() < kMaxUnresolved) {
      job.unresolved.insert(pid);  // perhaps a launch in flight: decided once they settle
    } else {
      no_process(pid);
    }
  }
  return answer;
}

}  // namespace constellation::daemon::master
