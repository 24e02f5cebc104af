#pragma once

// The master's durable state: jobs, their processes, their event logs and how
// far each node's event stream has been stored, in one SQLite file
// (DIR/jobs.sqlite3, journal in WAL mode).
//
// Writes of records (PutJob, PutProcess, DeleteJob) are synchronous: they
// return once committed. Events are batched: Append assigns the next seq at
// once and queues the event without touching the disk; a commit thread writes
// what is queued in one transaction every `commit_interval` (sooner when
// `commit_batch` events are queued), so an output-heavy job does not wait on
// a commit per line. Every commit, whoever makes it, also writes what is
// queued, so a record never reaches the disk before an event queued earlier.
//
// Memory is bounded: what is queued and not yet committed is at most about
// `max_queued_bytes`; past it, Append waits for the commit thread
// (back-pressure). If commits keep failing (the disk is full), the queue is
// kept and retried, so Append eventually blocks until the disk recovers.
// Each job's log is bounded by `max_log_bytes_per_job` (output beyond it is
// dropped and marked by one Truncated event).
//
// The file is opened with an exclusive lock: a second store (another master)
// on the same directory is refused until this one is destroyed.
//
// Threading: every method may be called from any thread at once (the gRPC
// threads). Append and Mark never wait on the disk (only on back-pressure);
// the others may wait for a commit in progress. The commit listener runs on a
// committing thread with no lock of the store held, one call at a time, in
// commit order; it may read the store, but must not Append or Mark (under
// back-pressure those wait for a commit, perhaps of the very thread it runs on).

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/master/event_queue.h"
#include "daemon/master/job_records.h"
#include "proto/jobs.pb.h"

namespace constellation::daemon::master {

class StoreDb;

class JobStore {
 public:
  struct Options {
    uint64_t max_log_bytes_per_job = 64ull << 20;  // output beyond it is dropped
    // The least time between two commits. An event after a quiet spell (no
    // commit for this long) is committed at once; events that follow within
    // it wait for the next, so a stream is committed once per interval. A
    // client following the job sees an event once it is committed: a line
    // printed now and then reaches cdeploy without waiting, and while output
    // flows there are at most 500 commits a second (~60 µs each,
    // bench/job_store_bench). Every event used to wait the interval, which
    // was a third of a cluster spawn's first line at 2 ms (and 22 of 37 ms
    // at 20 ms).
    absl::Duration commit_interval = absl::Milliseconds(2);
    size_t commit_batch = 4096;               // or it is committed sooner when this many are queued.
    bool fsync_each_commit = false;           // default: WAL + synchronous=NORMAL (a crash of the
                                              // master loses nothing; a power loss the last commits)
    uint64_t max_queued_bytes = 64ull << 20;  // back-pressure on Append beyond it
  };

  // The default time a finished job is kept when its spec says 0.
  static constexpr int64_t kDefaultTtlMs = kDefaultJobTtlMs;

  // Opens (creating) DIR/jobs.sqlite3; DIR is made private (0700) or refused
  // if it is not ours. A file that is not a store of this version is a clear
  // error (names the file, says what to do).
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& dir, Options options);
  ~JobStore();  // commits what is queued, stops the commit thread
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Synchronous writes: queued events are committed in the same transaction,
  // before these return.
  absl::Status PutJob(const JobRecord& job);  // insert or replace
  absl::Status PutProcess(const ProcessRecord& process);
  absl::Status DeleteJob(uint64_t id);  // the job, its processes and its events
  // 1, 2, ...; never reuses an id, also after Delete and reopen: the counter
  // is written with the next commit (an id handed out but never put may come
  // again only if the master crashed before any commit after it).
  uint64_t NextJobId();

  std::optional<JobRecord> GetJob(uint64_t id);
  // Scoped per owner; nullopt for an empty request_id. If several jobs have
  // it, the first (lowest id).
  std::optional<JobRecord> FindByRequestId(const std::string& owner, const std::string& request_id);
  // Newest (highest id) first; InvalidArgument for a bad token.
  absl::StatusOr<JobPage> ListJobs(const JobFilter& filter);
  std::vector<JobRecord> Unfinished();                 // PENDING or RUNNING: what a restarted master resumes
  std::vector<ProcessRecord> Processes(uint64_t job);  // in the order first put
  // Finished (SUCCEEDED/FAILED/CANCELLED) with finished_ms + ttl <= now_ms
  // (ttl = spec.ttl_after_finished_ms, or kDefaultTtlMs when 0).
  std::vector<uint64_t> Expired(int64_t now_ms);

  // The event log, batched. Append assigns the job's next seq (1, 2, ... no
  // gaps, continuing after reopen) at once and queues the event (its time_ms
  // is set to now when 0). Output events (with data) that would take the
  // job's log (the stored size of its events) past max_log_bytes_per_job are
  // dropped: the first one dropped is replaced by one Truncated event
  // (dropped_bytes: that event's data size; why: "output beyond N MiB is not
  // kept"). Spawn, exit, eof, state and truncated events are never dropped.
  // Returns the seq given to the event, or 0 when it was dropped (also when a
  // Truncated event took its place) or its job is not stored (never put, or
  // deleted). `mark`, if given, is stored in the same transaction as the
  // event (a crash keeps both or neither), also when the event is dropped.
  uint64_t Append(uint64_t job, v1::JobEvent event, std::optional<NodeMark> mark = std::nullopt);
  void Mark(NodeMark mark);             // a mark with no event, queued like one
  absl::Status Flush();                 // commits everything queued now, returns when committed
  uint64_t CommittedSeq(uint64_t job);  // the highest seq visible to ReadEvents
  // Committed events with seq > after, in order: at most max_events, and
  // stops after the event that passes max_bytes (always at least one if
  // there is one and max_events > 0).
  std::vector<v1::JobEvent> ReadEvents(uint64_t job, uint64_t after, size_t max_events, size_t max_bytes);
  std::optional<NodeMark> GetMark(const std::string& node);

  // How many stored jobs are in each state (as committed), for the metrics:
  // indexed by v1::JobState. Never waits on the disk.
  using StateCounts = std::array<int64_t, v1::JobState_ARRAYSIZE>;
  StateCounts CountByState() const;

  // Called after each commit that stored events or marks, with the jobs whose
  // committed seq advanced and the marks committed (latest per node). Set
  // before the first Append. Replacing it (nullptr: none) waits until a call
  // of the old one in progress has returned, so the old one may be destroyed
  // next; so it must not be called from the listener itself.
  using CommitListener = std::function<void(const std::vector<uint64_t>& jobs, const std::vector<NodeMark>& marks)>;
  void SetCommitListener(CommitListener listener);

 private:
  struct Note {  // one commit, for the listener
    std::vector<uint64_t> jobs;
    std::vector<NodeMark> marks;
  };
  JobStore(Options options, std::unique_ptr<StoreDb> db, uint64_t next_job_id);
  // Commits what is queued and `write` (a record's change; may be null) in one
  // transaction; `after` (may be null) runs once it is committed, under db_mu_.
  // `paced`: the commit thread's commit (EventQueue::Take).
  absl::Status Commit(const std::function<absl::Status(StoreDb&)>& write, const std::function<void()>& after,
                      bool paced = false);
  void CommitLoop();  // the commit thread
  void Notify();      // delivers notes_ to the listener, in order, from one thread at a time

  const Options options_;
  EventQueue queue_;
  std::atomic<uint64_t> next_job_id_;  // the next NextJobId()
  // Sets the committed state of job `id` (nullopt: deleted) and the counts. Needs db_mu_.
  void CountState(uint64_t id, std::optional<v1::JobState> state);

  // std::mutex, not absl::Mutex: ThreadSanitizer sees only the former.
  std::mutex db_mu_;                         // serializes every use of the file; guards the four below
  std::map<uint64_t, v1::JobState> states_;  // every stored job's state
  std::unique_ptr<StoreDb> db_;
  uint64_t stored_next_job_id_;
  bool failing_ = false;  // the last commit failed (logged once)
  std::mutex notify_mu_;  // taken after db_mu_; guards the three below
  std::shared_ptr<const CommitListener> listener_;
  std::deque<Note> notes_;
  bool notifying_ = false;
  bool calling_ = false;                   // the listener runs (on some thread)
  std::condition_variable listener_idle_;  // calling_ became false
  std::thread commit_thread_;
  std::array<std::atomic<int64_t>, v1::JobState_ARRAYSIZE> counts_{};  // of states_, for readers without db_mu_
};

}  // namespace constellation::daemon::master
