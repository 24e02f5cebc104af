// JobManager: starting a job's root and the children its processes spawn.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "daemon/log/log.h"
#include "daemon/master/job_manager.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::FromProto;
using internal::ToProto;

// Under mu_. The root may wait for room: a thread of its own (joined later).
void JobManager::StartRoot(uint64_t id) {
  ReapStarters(/*all=*/false);
  ActiveJob& job = active_.at(id);
  job.starting = true;
  auto done = std::make_shared<std::atomic<bool>>(false);
  starters_.emplace_back(std::thread([this, id, done] {
                           RunStarter(id);
                           done->store(true);
                         }),
                         done);
}

void JobManager::ReapStarters(bool all) {
  std::vector<std::thread> finished;
  {
    // Called with mu_ held (all=false) or at destruction (all=true, unlocked).
    std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
    if (all) lock.lock();
    for (auto it = starters_.begin(); it != starters_.end();) {
      if (all || it->second->load()) {
        finished.push_back(std::move(it->first));
        it = starters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (std::thread& thread : finished) thread.join();
}

void JobManager::RunStarter(uint64_t id) {
  JobRecord record;
  std::shared_ptr<std::atomic<bool>> stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ActiveJob& job = active_.at(id);
    record = job.record;
    stop = job.stop;
  }
  const v1::JobSpec& spec = record.job.spec();
  // A restarted master resumes pending jobs before its nodes are back: the
  // resources query needs one.
  parts_.placement->WaitForNodes([stop] { return stop->load(); });
  pb::LaunchRequest launch;
  launch.mutable_binary()->set_sha256(spec.binary().sha256());
  launch.mutable_binary()->set_size(spec.binary().size());
  launch.mutable_argv()->CopyFrom(spec.argv());
  launch.mutable_env()->CopyFrom(spec.env());
  launch.set_stdin_pipe(spec.attach_stdin());
  launch.set_secret(record.secret);
  *launch.mutable_resources() = spec.has_resources() ? spec.resources() : ToProto(RootResources(record));
  absl::StatusOr<Launched> launched = PlaceAndLaunch(id, launch, /*wait=*/true, stop);

  std::vector<std::string> kill_on;
  {
    FlushGone flush(parts_.gone);
    std::lock_guard<std::mutex> lock(mu_);
    ActiveJob& job = active_.at(id);
    job.starting = false;
    if (!launched.ok() && stopping_) return;  // still PENDING in the store: the next master starts it
    if (!launched.ok()) {
      bool cancelled = !job.cancelled_by.empty();
      FinishLocked(id, cancelled ? v1::JOB_STATE_CANCELLED : v1::JOB_STATE_FAILED,
                   cancelled ? absl::StrCat("cancelled by ", job.cancelled_by)
                             : absl::StrCat("cannot start the program: ", launched.status().message()));
      return;
    }
    job.root = launched->pid;
    job.root_node = launched->node;
    job.record.job.set_state(v1::JOB_STATE_RUNNING);
    job.record.job.set_reason("running");
    job.record.job.set_started_ms(absl::ToUnixMillis(parts_.timers->Now()));
    AppendStateEventLocked(job);                 // "running" before anything the root says
    RecordLaunchLocked(job, *launched, launch);  // the root before the job says it runs
    LaunchSettledLocked(job, launched->node, launched->launch);
    PutJobLocked(job);
    if (!job.cancelled_by.empty()) kill_on.push_back(launched->node);  // cancelled while it started
    MaybeFinishLocked(id);                                             // the root may have exited already
  }
  if (!kill_on.empty()) SignalJob(id, SIGKILL, kill_on);
}

// What the root's init() asks for, so it is placed and accounted as what it
// is. The master never runs uploaded code itself: a node runs the query in a
// small cgroup with a timeout (NodeService::QueryResources). A binary that
// cannot say gets the default Resources(), with a line on the master's stderr.
NodeClient* JobManager::FirstNode() {
  for (const scheduler::NodeState& attached : parts_.placement->Nodes()) {
    if (NodeClient* node = parts_.nodes->client(attached.id); node != nullptr) return node;
  }
  return nullptr;
}

Resources JobManager::RootResources(const JobRecord& record) {
  const v1::JobSpec& spec = record.job.spec();
  pb::ResourcesQuery query;
  query.mutable_binary()->set_sha256(spec.binary().sha256());
  query.mutable_binary()->set_size(spec.binary().size());
  query.mutable_argv()->CopyFrom(spec.argv());
  query.mutable_env()->CopyFrom(spec.env());
  if (std::optional<Resources> known = resources_answers_.Find(query)) return *known;
  absl::Status why = absl::UnavailableError("no node is up to ask the binary");
  for (const scheduler::NodeState& attached : parts_.placement->Nodes()) {
    NodeClient* node = parts_.nodes->client(attached.id);
    if (node == nullptr) continue;
    why = parts_.binaries->EnsureOn(*node, query.binary());
    if (!why.ok()) continue;
    absl::StatusOr<Resources> asked = node->QueryResources(query);
    if (asked.ok()) {
      resources_answers_.Remember(query, *asked);
      return *asked;
    }
    why = asked.status();
    break;  // the binary answered badly: another node would not do better
  }
  LogWarning("master", "job %d: placing the root with the default resources: %s", record.id, why.message());
  return Resources();
}

absl::StatusOr<JobManager::Launched> JobManager::PlaceAndLaunch(uint64_t job, pb::LaunchRequest launch, bool wait,
                                                                const std::shared_ptr<std::atomic<bool>>& stop) {
  absl::StatusOr<scheduler::Allocation> allocation =
      parts_.placement->Place(FromProto(launch.resources()), wait, [stop] { return stop->load(); });
  if (!allocation.ok()) return allocation.status();
  uint64_t number = 0;
  {
    // Until the launch is recorded (or fails), the node may run a process of
    // the job that watches others: it gets the job's verdicts.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(job);
    if (it != active_.end()) number = LaunchStartsLocked(it->second, allocation->node);
  }
  NodeClient* node = parts_.nodes->client(allocation->node);
  absl::Status ready = parts_.binaries->EnsureOn(*node, launch.binary());
  absl::StatusOr<Pid> pid = absl::CancelledError("the job ended while the process started");
  if (ready.ok() && !stop->load()) {
    launch.set_deployment(job);
    pid = node->Launch(launch);
  } else if (!ready.ok()) {
    pid = ready;
  }
  if (!pid.ok()) {
    parts_.placement->Release(allocation->id);
    FlushGone flush(parts_.gone);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(job);
    if (it != active_.end()) LaunchSettledLocked(it->second, allocation->node, number);
    return pid.status();
  }
  return Launched{*pid, allocation->node, allocation->id, number};
}

// The process is written to the store before its spawn is answered, so a
// restarted master knows every process its jobs run. Its line goes first: the
// store commits what is queued with each write, so the line and the process
// become durable together. Delivering the line releases what the process said
// while its launch was in flight; if that included its exit, ExitedLocked has
// stored it as exited and it is no longer live.
void JobManager::RecordLaunchLocked(ActiveJob& job, const Launched& launched, const pb::LaunchRequest& launch) {
  LiveProcess& process = job.live[launched.pid];
  process.node = launched.node;
  process.allocation = launched.allocation;
  v1::JobProcess& record = process.record;
  *record.mutable_pid() = ToProto(launched.pid);
  record.set_pid_text(launched.pid.to_full_string());
  if (launch.has_parent()) *record.mutable_parent() = launch.parent();
  record.set_node(launched.node);
  *record.mutable_resources() = launch.resources();
  record.set_state(v1::PROCESS_STATE_RUNNING);
  // `process` and `record` may be gone once the line is delivered.
  if (!launch.has_parent()) {
    AppendReadyLocked(job, job.order.Announce(launched.pid));  // the root: no spawn line
  } else {
    // The spawn line, as an event of the parent: it waits behind the
    // parent's own line if that is not out yet.
    EventOrder::Item line;
    *line.event.mutable_pid() = launch.parent();
    *line.event.mutable_spawn()->mutable_child() = ToProto(launched.pid);
    *line.event.mutable_spawn()->mutable_resources() = launch.resources();
    DeliverLocked(job, std::move(line));
  }
  auto still = job.live.find(launched.pid);
  if (still == job.live.end()) return;
  absl::Status stored = parts_.store->PutProcess(ProcessRecord{job.record.id, still->second.record});
  if (!stored.ok()) {
    LogError("master", "job %d: cannot store a process: %s", job.record.id, stored.message());
  }
}

absl::StatusOr<Pid> JobManager::Spawn(uint64_t id, const pb::SpawnRequest& request) {
  absl::StatusOr<Pid> parent = FromProto(request.parent());
  if (!parent.ok()) return absl::InvalidArgumentError("a spawn request without its parent");
  pb::LaunchRequest launch;
  std::shared_ptr<std::atomic<bool>> stop;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // A process can ask to spawn before the Launch that started it has
    // returned here: its node starts it and answers at once, and a process
    // that starts fast (no exec, or a static binary) calls spawn() within
    // milliseconds. So a parent this job does not know yet waits for the
    // launches in flight now to settle (not for later ones: a job that keeps
    // spawning would keep it waiting); once they have, an unknown parent runs
    // no process of the job. Every launch settles (LaunchSettledLocked), or
    // the job ends (FinishLocked), is cancelled, or the master stops: each
    // notifies.
    auto it = active_.find(id);
    const uint64_t horizon = it == active_.end() ? 0 : it->second.next_launch;
    auto known_or_settled = [&] {
      it = active_.find(id);
      if (stopping_ || it == active_.end() || !it->second.cancelled_by.empty()) return true;
      const ActiveJob& job = it->second;
      return job.live.contains(*parent) || job.launches_in_flight.empty() || *job.launches_in_flight.begin() >= horizon;
    };
    if (!known_or_settled()) {
      ++spawns_waiting_;
      settled_.wait(lock, known_or_settled);
      --spawns_waiting_;
    }
    if (it == active_.end() || !it->second.cancelled_by.empty() || !it->second.live.contains(*parent)) {
      return absl::FailedPreconditionError(absl::StrCat("job ", id, " is not running that process"));
    }
    ActiveJob& job = it->second;
    const v1::JobSpec& spec = job.record.job.spec();
    launch.mutable_binary()->set_sha256(spec.binary().sha256());
    launch.mutable_binary()->set_size(spec.binary().size());
    launch.set_secret(job.record.secret);
    stop = job.stop;
    ++job.launching;
  }
  launch.mutable_argv()->CopyFrom(request.argv());
  launch.mutable_env()->CopyFrom(request.env());
  *launch.mutable_resources() = request.resources();
  *launch.mutable_parent() = request.parent();
  *launch.mutable_call() = request.call();
  absl::StatusOr<Launched> launched = PlaceAndLaunch(id, launch, request.wait(), stop);

  std::string kill_on;
  {
    FlushGone flush(parts_.gone);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(id);
    if (it != active_.end()) --it->second.launching;
    if (!launched.ok()) {
      if (it != active_.end()) MaybeFinishLocked(id);
      return launched.status();
    }
    if (it != active_.end() && it->second.cancelled_by.empty()) {
      RecordLaunchLocked(it->second, *launched, launch);
      LaunchSettledLocked(it->second, launched->node, launched->launch);
      MaybeFinishLocked(id);  // it may have exited already, and been the last
      return launched->pid;
    }
    // The job ended or was cancelled while this process started, after its
    // kill went out: stop the newcomer too, and forget it.
    parts_.placement->Release(launched->allocation);
    if (it != active_.end()) {
      it->second.gone.insert(launched->pid);
      it->second.order.Forget(launched->pid);
      pb::ProcessGone killed;
      killed.mutable_exit()->set_signal(SIGKILL);
      killed.mutable_exit()->set_error("killed: the job was cancelled while it started");
      VerdictLocked(it->second, launched->pid, std::move(killed));
      LaunchSettledLocked(it->second, launched->node, launched->launch);
      MaybeFinishLocked(id);
    }
    kill_on = launched->node;
  }
  if (NodeClient* node = parts_.nodes->client(kill_on)) {
    pb::KillRequest kill;
    kill.set_deployment(id);
    *kill.add_pids() = ToProto(launched->pid);
    node->Kill(kill).IgnoreError();
  }
  return absl::CancelledError("the job ended while the process started");
}

int JobManager::SpawnsWaitingForLaunches() {
  std::lock_guard<std::mutex> lock(mu_);
  return spawns_waiting_;
}

void JobManager::SignalJob(uint64_t job, int signal, const std::vector<std::string>& nodes) {
  std::set<std::string> unique(nodes.begin(), nodes.end());
  for (const std::string& addr : unique) {
    NodeClient* node = parts_.nodes->client(addr);
    if (node == nullptr) continue;
    pb::KillRequest kill;
    kill.set_deployment(job);
    kill.set_signal(signal);
    node->Kill(kill).IgnoreError();  // a node that is gone has killed them already
  }
}

}  // namespace constellation::daemon::master
