// JobManager: recovery after a restart, and the nodes' hellos, events and losses.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "daemon/master/job_manager.h"
#include "lib/process/output_format.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::DescribeExit;
using internal::ExitCodeOf;
using internal::FromProto;
using internal::ToProto;

void JobManager::Recover() {
  std::lock_guard<std::mutex> lock(mu_);
  for (JobRecord& record : parts_.store->Unfinished()) {
    uint64_t id = record.id;
    ActiveJob& job = active_[id];
    job.record = std::move(record);
    for (const ProcessRecord& stored : parts_.store->Processes(id)) {
      absl::StatusOr<Pid> pid = FromProto(stored.process.pid());
      if (!pid.ok()) continue;
      job.order.Announce(*pid);  // its spawn line is in the log already
      job.ran_on.insert(stored.process.node());
      if (!stored.process.has_parent()) {
        job.root = *pid;
        job.root_node = stored.process.node();
      }
      if (stored.process.state() == v1::PROCESS_STATE_RUNNING) {
        LiveProcess& live = job.live[*pid];
        live.node = stored.process.node();
        live.confirmed = false;  // until its node says it still runs it
        live.record = stored.process;
      } else {
        job.gone.insert(*pid);
        pb::ProcessGone gone;
        *gone.mutable_exit() = stored.process.exit();
        *gone.mutable_pid() = ToProto(*pid);
        job.verdicts.emplace(*pid, std::move(gone));  // for Master.Watch (no node is up to tell)
        int code = ExitCodeOf(stored.process.exit());
        if (job.failure.empty() && code != 0) {
          job.failure = absl::StrCat(pid->to_full_string(), " ", DescribeExit(stored.process.exit()));
        }
      }
    }
    if (!job.root) {
      StartRoot(id);  // it never started: start it now
    } else if (job.record.job.state() == v1::JOB_STATE_PENDING) {
      // The master stopped between recording the root and saying it runs.
      job.record.job.set_state(v1::JOB_STATE_RUNNING);
      job.record.job.set_reason("running");
      AppendStateLocked(job);
    }
    if (job.root && job.live.empty()) {
      MaybeFinishLocked(id);  // everything ended before the restart could say so
    }
  }
  parts_.timers->After(options_.master_grace, [this] { GiveUpUnconfirmed(); });
}

pb::AttachRequest JobManager::AttachRequestFor(const std::string& addr) {
  pb::AttachRequest request;
  {
    std::lock_guard<std::mutex> lock(mu_);
    request.set_master_addr(options_.self_addr);
  }
  if (std::optional<NodeMark> mark = parts_.store->GetMark(addr)) {
    request.set_incarnation(mark->incarnation);
    request.set_resume_after(mark->seq);
  }
  return request;
}

void JobManager::OnNodeUp(const std::string& addr, const pb::NodeHello& hello) {
  FlushGone flush(parts_.gone);
  std::map<uint64_t, std::vector<Pid>> to_kill;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (incarnations_[addr] != hello.incarnation()) parts_.binaries->Forget(addr);  // a restarted node: new cache
    incarnations_[addr] = hello.incarnation();
    progress_[addr] = NodeProgress{hello.incarnation(), {}, 0};
    parts_.placement->AddNode(addr, parts_.nodes->capacity(addr)).IgnoreError();  // known already: fine
    std::set<std::pair<uint64_t, Pid>> runs;
    for (const pb::RunningProcess& running : hello.processes()) {
      absl::StatusOr<Pid> pid = FromProto(running.pid());
      if (!pid.ok()) continue;
      runs.insert({running.deployment(), *pid});
      auto job = active_.find(running.deployment());
      LiveProcess* live = nullptr;
      if (job != active_.end()) {
        auto it = job->second.live.find(*pid);
        if (it != job->second.live.end() && it->second.node == addr && !it->second.confirmed) live = &it->second;
      }
      if (live == nullptr) {
        // Not one the books count as running here (declared lost meanwhile,
        // or launched but never recorded): it must not run on unaccounted.
        to_kill[running.deployment()].push_back(*pid);
        continue;
      }
      absl::StatusOr<scheduler::Allocation> adopted = parts_.placement->Adopt(addr, FromProto(running.resources()));
      if (!adopted.ok()) {
        to_kill[running.deployment()].push_back(*pid);
        LostLocked(job->second, *pid, absl::StrCat("cannot take it back on ", addr, ": ", adopted.status().message()),
                   /*node_lost=*/false);
        continue;
      }
      live->allocation = adopted->id;
      live->confirmed = true;
    }
    std::vector<uint64_t> touched;
    for (auto& [id, job] : active_) {
      std::vector<Pid> vanished;
      for (const auto& [pid, live] : job.live) {
        if (live.node == addr && !live.confirmed && !runs.contains({id, pid})) vanished.push_back(pid);
      }
      for (const Pid& pid : vanished) {
        LostLocked(job, pid, absl::StrCat("node ", addr, " no longer runs it (the node restarted)"),
                   /*node_lost=*/false);
      }
      if (!vanished.empty()) touched.push_back(id);
    }
    for (uint64_t id : touched) MaybeFinishLocked(id);
  }
  for (const auto& [deployment, pids] : to_kill) {
    pb::KillRequest kill;
    kill.set_deployment(deployment);
    kill.set_signal(SIGKILL);
    for (const Pid& pid : pids) *kill.add_pids() = ToProto(pid);
    parts_.nodes->client(addr)->Kill(kill).IgnoreError();
  }
}

void JobManager::OnNodeEvent(const std::string& addr, const std::string& incarnation, const pb::NodeEvent& event) {
  FlushGone flush(parts_.gone);
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t seq = event.seq();
  auto mark_only = [&] {
    if (std::optional<NodeMark> mark = MarkFor(addr, incarnation, seq)) parts_.store->Mark(*mark);
  };
  auto it = active_.find(event.deployment());
  if (it == active_.end()) return mark_only();  // a job that is over (or unknown): nothing to add
  ActiveJob& job = it->second;
  if (event.dropped_bytes() > 0) {
    v1::JobEvent truncated;
    truncated.set_time_ms(absl::ToUnixMillis(parts_.timers->Now()));
    truncated.mutable_truncated()->set_dropped_bytes(event.dropped_bytes());
    truncated.mutable_truncated()->set_why(absl::StrCat("node ", addr, " could not keep it while it had no master"));
    parts_.store->Append(job.record.id, std::move(truncated));
  }
  absl::StatusOr<Pid> pid = event.has_event() ? FromProto(event.event().pid()) : absl::StatusOr<Pid>(Pid());
  if (!event.has_event() || !pid.ok() || job.gone.contains(*pid) ||
      (job.order.IsAnnounced(*pid) && !job.live.contains(*pid))) {
    return mark_only();
  }
  DeliverLocked(job, EventOrder::Item{event.event(), addr, incarnation, seq});
  MaybeFinishLocked(event.deployment());
}

void JobManager::OnNodeDown(const std::string& addr, const absl::Status& why) {
  metrics_.NodeLost();
  FlushGone flush(parts_.gone);  // after the lock: the node-lost verdicts go out at once
  std::lock_guard<std::mutex> lock(mu_);
  parts_.placement->RemoveNode(addr);
  progress_.erase(addr);  // before the verdicts: nothing is queued for the node that is lost
  parts_.gone->NodeDown(addr);
  std::string reason = absl::StrCat("node ", addr, " was lost", why.message().empty() ? "" : ": ", why.message());
  std::vector<uint64_t> touched;
  for (auto& [id, job] : active_) {
    std::vector<Pid> lost;
    for (const auto& [pid, live] : job.live) {
      if (live.node == addr) lost.push_back(pid);
    }
    for (const Pid& pid : lost) LostLocked(job, pid, reason, /*node_lost=*/true);
    if (!lost.empty()) touched.push_back(id);
  }
  for (uint64_t id : touched) MaybeFinishLocked(id);
}

void JobManager::GiveUpUnconfirmed() {
  FlushGone flush(parts_.gone);
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> touched;
  for (auto& [id, job] : active_) {
    std::vector<std::pair<Pid, std::string>> lost;
    for (const auto& [pid, live] : job.live) {
      if (!live.confirmed) lost.emplace_back(pid, live.node);
    }
    for (const auto& [pid, node] : lost) {
      LostLocked(job, pid,
                 absl::StrCat("node ", node, " did not come back within ", absl::FormatDuration(options_.master_grace),
                              " of the master's restart"),
                 /*node_lost=*/true);
    }
    if (!lost.empty()) touched.push_back(id);
  }
  for (uint64_t id : touched) MaybeFinishLocked(id);
}

}  // namespace constellation::daemon::master
