// JobManager: each job's event log, its processes' exits, and its end.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "daemon/log/log.h"
#include "daemon/master/job_manager.h"
#include "lib/process/output_format.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::DescribeExit;
using internal::ExitCodeOf;
using internal::FromProto;
using internal::ToProto;

void JobManager::DeliverLocked(ActiveJob& job, EventOrder::Item item) {
  bool refused = false;
  std::string node = item.node;
  std::string incarnation = item.incarnation;
  std::optional<uint64_t> seq = item.node_seq;
  std::vector<EventOrder::Item> ready = job.order.Deliver(std::move(item), &refused);
  if (seq && ready.empty()) {
    if (refused) {
      if (std::optional<NodeMark> mark = MarkFor(node, incarnation, *seq)) parts_.store->Mark(*mark);
    } else {
      auto it = progress_.find(node);
      if (it != progress_.end() && it->second.incarnation == incarnation) it->second.held.insert(*seq);
    }
  }
  AppendReadyLocked(job, std::move(ready));
}

void JobManager::UnholdLocked(const std::vector<EventOrder::Item>& items) {
  for (const EventOrder::Item& item : items) {
    if (!item.node_seq) continue;
    auto it = progress_.find(item.node);
    if (it == progress_.end() || it->second.incarnation != item.incarnation) continue;
    auto held = it->second.held.find(*item.node_seq);
    if (held != it->second.held.end()) it->second.held.erase(held);
  }
}

std::optional<NodeMark> JobManager::MarkFor(const std::string& node, const std::string& incarnation, uint64_t seq) {
  auto it = progress_.find(node);
  if (it == progress_.end() || it->second.incarnation != incarnation) return std::nullopt;
  NodeProgress& progress = it->second;
  progress.max_seen = std::max(progress.max_seen, seq);
  uint64_t upto = progress.held.empty() ? progress.max_seen : *progress.held.begin() - 1;
  return NodeMark{node, incarnation, upto};
}

void JobManager::AppendReadyLocked(ActiveJob& job, std::vector<EventOrder::Item> items) {
  UnholdLocked(items);
  int64_t now = absl::ToUnixMillis(parts_.timers->Now());
  for (EventOrder::Item& item : items) {
    std::optional<NodeMark> mark;
    if (item.node_seq) mark = MarkFor(item.node, item.incarnation, *item.node_seq);
    bool exit = item.event.has_exit();
    absl::StatusOr<Pid> pid = FromProto(item.event.pid());
    pb::ExitEvent exit_event = item.event.exit();
    v1::JobEvent event;
    event.set_time_ms(now);
    *event.mutable_process() = std::move(item.event);
    parts_.store->Append(job.record.id, std::move(event), mark);
    if (exit && pid.ok()) ExitedLocked(job, *pid, exit_event);
  }
}

void JobManager::ExitedLocked(ActiveJob& job, const Pid& pid, const pb::ExitEvent& exit) {
  auto it = job.live.find(pid);
  if (it == job.live.end()) return;  // reported already
  if (it->second.allocation != 0) parts_.placement->Release(it->second.allocation);
  v1::JobProcess record = it->second.record;
  record.set_state(v1::PROCESS_STATE_EXITED);
  *record.mutable_exit() = exit;
  job.live.erase(it);
  job.gone.insert(pid);
  pb::ProcessGone gone;
  *gone.mutable_exit() = exit;
  VerdictLocked(job, pid, std::move(gone));  // none if it was lost: that verdict stands
  int code = ExitCodeOf(exit);
  if (job.record.job.exit_code() == 0 && code != 0) {
    job.record.job.set_exit_code(code);
    job.failure = absl::StrCat(pid.to_full_string(), " ", DescribeExit(exit));
  }
  absl::Status stored = parts_.store->PutProcess(ProcessRecord{job.record.id, record});
  if (!stored.ok()) {
    LogError("master", "job %d: cannot store an exit: %s", job.record.id, stored.message());
  }
}

// The process is gone without a word from its node: its exit is reported for
// it, and whatever the node may still say of it is ignored. The verdict goes
// out at once (its exit event may wait in the log's order).
void JobManager::LostLocked(ActiveJob& job, const Pid& pid, const std::string& why, bool node_lost) {
  job.gone.insert(pid);
  EventOrder::Item item;
  *item.event.mutable_pid() = ToProto(pid);
  item.event.mutable_exit()->set_signal(SIGKILL);
  item.event.mutable_exit()->set_error(why);
  pb::ProcessGone gone;
  if (node_lost) {
    gone.set_node_lost(true);
  } else {
    *gone.mutable_exit() = item.event.exit();
  }
  VerdictLocked(job, pid, std::move(gone));
  DeliverLocked(job, std::move(item));
}

void JobManager::MaybeFinishLocked(uint64_t id) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  ActiveJob& job = it->second;
  if (job.starting || job.launching > 0 || !job.live.empty() || !job.root) return;
  if (!job.cancelled_by.empty()) {
    FinishLocked(id, v1::JOB_STATE_CANCELLED, absl::StrCat("cancelled by ", job.cancelled_by));
  } else if (job.record.job.exit_code() == 0) {
    FinishLocked(id, v1::JOB_STATE_SUCCEEDED, "every process exited 0");
  } else {
    FinishLocked(id, v1::JOB_STATE_FAILED, job.failure);
  }
}

void JobManager::FinishLocked(uint64_t id, v1::JobState state, const std::string& reason) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  ActiveJob& job = it->second;
  job.stop->store(true);
  parts_.placement->Wake();
  // Its nodes drop what they keep for it (its zygotes, node_zygotes.h): a
  // SIGKILL to the deployment, which has no process left; after the lock.
  std::vector<std::string> ran_on(job.ran_on.begin(), job.ran_on.end());
  parts_.timers->After(absl::ZeroDuration(), [this, id, ran_on] { SignalJob(id, SIGKILL, ran_on); });
  parts_.gone->Forget(id);              // every process of it is gone: no node needs its verdicts
  UnholdLocked(job.order.ForgetAll());  // events of processes never announced: nothing to show them after
  v1::Job& view = job.record.job;
  view.set_state(state);
  view.set_reason(reason);
  if (state != v1::JOB_STATE_SUCCEEDED && view.exit_code() == 0)
    view.set_exit_code(state == v1::JOB_STATE_CANCELLED ? 130 : 2);
  view.set_finished_ms(absl::ToUnixMillis(parts_.timers->Now()));
  AppendStateLocked(job);
  active_.erase(it);
  settled_.notify_all();
}

void JobManager::AppendStateLocked(ActiveJob& job) {
  AppendStateEventLocked(job);
  PutJobLocked(job);
}

void JobManager::PutJobLocked(ActiveJob& job) {
  absl::Status stored = parts_.store->PutJob(job.record);  // commits the events queued before it
  if (!stored.ok()) {
    LogError("master", "job %d: cannot store its state: %s", job.record.id, stored.message());
  }
}

void JobManager::AppendStateEventLocked(ActiveJob& job) {
  v1::JobEvent event;
  event.set_time_ms(absl::ToUnixMillis(parts_.timers->Now()));
  v1::StateChange* change = event.mutable_state();
  change->set_state(job.record.job.state());
  change->set_reason(job.record.job.reason());
  change->set_exit_code(job.record.job.exit_code());
  parts_.store->Append(job.record.id, std::move(event));
}

void JobManager::Sweep() {
  std::vector<uint64_t> expired = parts_.store->Expired(absl::ToUnixMillis(parts_.timers->Now()));
  for (uint64_t id : expired) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!active_.contains(id)) parts_.store->DeleteJob(id).IgnoreError();
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!stopping_) parts_.timers->After(options_.sweep_interval, [this] { Sweep(); });
}

}  // namespace constellation::daemon::master
