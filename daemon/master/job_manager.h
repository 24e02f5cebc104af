#pragma once

// JobManager: the master's jobs. It takes submissions, starts each job's
// root on a node, places the processes the job spawns (Master.Spawn), turns
// the nodes' event streams into each job's ordered event log (in the job
// store), decides when a job has ended and how, cancels jobs, and, after a
// restart of the master, takes back what its nodes still run.
//
// What it knows of a running job is rebuilt from the store and the nodes'
// hellos: the store has every job, every process launched (written before
// the spawn that launched it is answered) and the log; each node says what it
// runs and sends again what the master has not stored (NodeMark, Node.Ack).
// A process the store counts as running whose node does not come back within
// `master_grace` is reported lost; a process a node runs that the store does
// not count as running (its node was declared lost meanwhile, or its launch
// was never recorded) is killed, and its events are ignored, so no exit is
// ever reported twice.
//
// Authorization: each call names its caller; a client sees and manages its
// own jobs, an admin every job (security::MayManage).
//
// Threading: thread-safe. One lock guards the jobs; the store's synchronous
// writes happen under it (so the log's order is the lock's order), node RPCs
// and placement waits never do. Job roots start on threads of the manager's
// own, joined at destruction. Lock order: the manager's lock, then
// Placement's; Placement's waits test an atomic flag, never this lock.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/binary_cache.h"
#include "daemon/master/binary_distribution.h"
#include "daemon/master/commit_notifier.h"
#include "daemon/master/event_order.h"
#include "daemon/master/gone_broadcast.h"
#include "daemon/master/job_store.h"
#include "daemon/master/node_set.h"
#include "daemon/master/placement.h"
#include "daemon/master/resources_answers.h"
#include "daemon/master/timers.h"
#include "daemon/metrics/master_metrics.h"
#include "daemon/security/authz.h"
#include "daemon/security/identity.h"
#include "proto/jobs.pb.h"

namespace constellation::daemon::master {

using security::Identity;

class JobManager : public NodeEventHandler {
 public:
  struct Options {
    std::string self_addr;  // where nodes reach the Master service
    // How long a restarted master waits for the nodes that ran its jobs.
    absl::Duration master_grace = absl::Seconds(60);
    // How often finished jobs past their TTL are deleted.
    absl::Duration sweep_interval = absl::Minutes(1);
  };
  // Everything must outlive the manager.
  struct Parts {
    JobStore* store;
    NodeSet* nodes;
    Placement* placement;
    BinaryDistribution* binaries;
    BinaryCache* cache;
    Timers* timers;
    CommitNotifier* notifier;
    GoneBroadcast* gone;
    metrics::MasterMetrics* metrics = nullptr;  // null: none
  };
  JobManager(Parts parts, Options options);
  ~JobManager() override;  // Shutdown()
  // Stops the starters and every wait for room; the jobs stay in the store
  // as they are, for the next master. Idempotent.
  void Shutdown();
  // Where nodes reach the Master service (known once its server listens). Before the nodes attach.
  void set_self_addr(std::string addr);

  // Resumes the store's unfinished jobs (before the nodes attach).
  void Recover();

  // The Jobs API.
  absl::StatusOr<v1::Job> Submit(const v1::JobSpec& spec, const Identity& caller);
  absl::StatusOr<v1::Job> Get(const std::string& job, const Identity& caller);
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request, const Identity& caller);
  absl::StatusOr<v1::Job> Cancel(const std::string& job, absl::Duration grace, const Identity& caller);
  absl::Status Delete(const std::string& job, const Identity& caller);
  absl::Status WriteStdin(const v1::WriteStdinRequest& request, const Identity& caller);
  v1::ListNodesResponse ListNodes();
  // The node a new binary is needed on first: the one its root's resources
  // query goes to (RootResources). Null when no node is attached.
  NodeClient* FirstNode();
  // The job's id if `caller` may watch it.
  absl::StatusOr<uint64_t> Watchable(const std::string& job, const Identity& caller);

  // Master.Spawn: a process of job `job` asks for a child. A parent the job
  // does not know yet waits while the job's launches are in flight (it may be
  // one of them).
  absl::StatusOr<Pid> Spawn(uint64_t job, const pb::SpawnRequest& request);
  // For tests: Spawn calls waiting so.
  int SpawnsWaitingForLaunches();

  // Master.Watch: which of `pids` (at most kMaxWatch) are gone, as far as
  // the master knows: exited (its exit), its node lost (node_lost), or no
  // process of job `job` (no_process; also when the job is over or unknown).
  // Those alive are left out: their end is broadcast (Parts::gone) to every
  // node that runs, or is being asked to launch, a process of the job, which
  // includes the caller's. A pid not known while launches of the job are in
  // flight may be one of them: it is left out too, and declared no_process
  // (broadcast) once they have settled without it (at most kMaxUnresolved
  // per job; past that, no_process at once).
  static constexpr size_t kMaxWatch = 1024;
  static constexpr size_t kMaxUnresolved = 65536;
  absl::StatusOr<pb::GoneBatch> Watch(uint64_t job, const std::vector<Pid>& pids);

  // NodeEventHandler (NodeSet's threads).
  pb::AttachRequest AttachRequestFor(const std::string& addr) override;
  void OnNodeUp(const std::string& addr, const pb::NodeHello& hello) override;
  void OnNodeEvent(const std::string& addr, const std::string& incarnation, const pb::NodeEvent& event) override;
  void OnNodeDown(const std::string& addr, const absl::Status& why) override;

 private:
  struct LiveProcess {
    std::string node;
    scheduler::AllocationId allocation = 0;
    bool confirmed = true;  // false: recovered from the store, its node has not said it runs it yet
    v1::JobProcess record;
  };
  struct ActiveJob {
    JobRecord record;
    EventOrder order;
    std::map<Pid, LiveProcess> live;
    std::set<Pid> gone;  // exited, lost or killed: their events are ignored
    // What was said of each process that is gone (or of a pid found no
    // process), once, for Master.Watch and the broadcast; one per process.
    std::map<Pid, pb::ProcessGone> verdicts;
    std::map<std::string, int> launching_on;  // nodes asked to launch a process of the job right now
    std::set<std::string> ran_on;             // nodes ever asked: told when the job ends (their zygotes)
    uint64_t next_launch = 0;                 // the number the next launch gets
    std::set<uint64_t> launches_in_flight;    // the numbers of those not settled yet
    std::set<Pid> unresolved;                 // watched while unknown with launches in flight
    std::optional<Pid> root;
    std::string root_node;
    bool starting = false;  // its root is being started
    int launching = 0;      // spawns between Launch and their record
    std::string cancelled_by;
    std::string failure;  // the first failure, for the reason
    // Set when the job is cancelled or over: its waits for room give up.
    std::shared_ptr<std::atomic<bool>> stop = std::make_shared<std::atomic<bool>>(false);
  };
  // Per node: its stream's incarnation and the seqs of its events still held
  // by an EventOrder, so that no acknowledgement passes them.
  struct NodeProgress {
    std::string incarnation;
    std::multiset<uint64_t> held;
    uint64_t max_seen = 0;
  };
  struct Launched {
    Pid pid;
    std::string node;
    scheduler::AllocationId allocation = 0;
    uint64_t launch = 0;  // its number (LaunchStartsLocked), to settle it
  };

  // --- job_manager.cc: the API's checks.
  absl::StatusOr<uint64_t> ParseJobId(const std::string& job) const;
  absl::StatusOr<JobRecord> Authorized(const std::string& job, const Identity& caller);
  v1::Job View(const JobRecord& record, bool with_processes);
  absl::Status ValidateSpec(const v1::JobSpec& spec);

  // --- job_launch.cc: starting roots and children.
  void StartRoot(uint64_t id);
  void RunStarter(uint64_t id);
  Resources RootResources(const JobRecord& record);
  absl::StatusOr<Launched> PlaceAndLaunch(uint64_t job, pb::LaunchRequest launch, bool wait,
                                          const std::shared_ptr<std::atomic<bool>>& stop);
  void RecordLaunchLocked(ActiveJob& job, const Launched& launched, const pb::LaunchRequest& launch);
  void SignalJob(uint64_t job, int signal, const std::vector<std::string>& nodes);
  void ReapStarters(bool all);

  // --- job_events.cc: the log.
  void DeliverLocked(ActiveJob& job, EventOrder::Item item);
  void AppendReadyLocked(ActiveJob& job, std::vector<EventOrder::Item> items);
  void ExitedLocked(ActiveJob& job, const Pid& pid, const pb::ExitEvent& exit);
  // `node_lost`: the master declared its node lost (or never back), rather than knowing it killed.
  void LostLocked(ActiveJob& job, const Pid& pid, const std::string& why, bool node_lost);
  void MaybeFinishLocked(uint64_t id);
  void FinishLocked(uint64_t id, v1::JobState state, const std::string& reason);
  // The job's state change into its log, and its record (which commits the log).
  void AppendStateLocked(ActiveJob& job);
  void AppendStateEventLocked(ActiveJob& job);
  void PutJobLocked(ActiveJob& job);
  // How far `node`'s stream may be acknowledged once its event `seq` is stored.
  std::optional<NodeMark> MarkFor(const std::string& node, const std::string& incarnation, uint64_t seq);
  // Its items came from nodes: they no longer hold back acknowledgements.
  void UnholdLocked(const std::vector<EventOrder::Item>& items);
  void Sweep();

  // --- job_verdicts.cc: what is said of processes that are gone (Watch, the broadcast).
  // Records the verdict on `pid` (the first one stands) and queues it for the
  // job's nodes; the caller flushes (parts_.gone->Flush()) once unlocked.
  void VerdictLocked(ActiveJob& job, const Pid& pid, pb::ProcessGone gone);
  // The nodes that run, or are being asked to launch, a process of the job, and are up.
  std::set<std::string> TargetsLocked(const ActiveJob& job);
  // A launch on `node` starts; returns its number, for LaunchSettledLocked.
  uint64_t LaunchStartsLocked(ActiveJob& job, const std::string& node);
  // Launch `launch` on `node` has settled: recorded, or failed.
  void LaunchSettledLocked(ActiveJob& job, const std::string& node, uint64_t launch);

  // --- job_nodes.cc: recovery and membership (OnNode*).
  void GiveUpUnconfirmed();

  const Parts parts_;
  ResourcesAnswers resources_answers_;  // RootResources' answers, by query
  metrics::MasterMetrics& metrics_;     // parts_.metrics, or one nobody reads
  Options options_;                     // self_addr set once, before the nodes attach

  std::mutex mu_;
  std::condition_variable settled_;                  // with mu_: a launch settled or a job ended
  int spawns_waiting_ = 0;                           // guarded by mu_: in Spawn, for a parent's launch
  std::map<uint64_t, ActiveJob> active_;             // guarded by mu_: unfinished jobs
  std::map<std::string, NodeProgress> progress_;     // guarded by mu_
  std::map<std::string, std::string> incarnations_;  // guarded by mu_: last seen per node
  bool stopping_ = false;                            // guarded by mu_
  std::vector<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> starters_;  // guarded by mu_
};

}  // namespace constellation::daemon::master
