#pragma once

// The in-memory half of the job store's event log (daemon/master/job_store.h):
// for each stored job, the seq it gave last, the seq committed and the size of
// its log; and the events and node marks queued for the next commit. No I/O:
// the store takes a Batch, writes it, and reports back (Committed or Failed).
//
// Threading: thread-safe (one internal mutex, never held while waiting on
// anything but the queue itself). Append may block on back-pressure only.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "daemon/master/job_records.h"

namespace constellation::daemon::master {

// What a job's log looks like on disk (and what the queue adds to it).
struct LogState {
  uint64_t seq = 0;        // the last seq
  uint64_t bytes = 0;      // the stored size of its events
  bool truncated = false;  // a Truncated event is in the log
};

// One queued write: an event (seq != 0) and/or a mark.
struct QueuedEvent {
  uint64_t job = 0;
  uint64_t seq = 0;        // 0: no event
  std::string body;        // the serialized v1::JobEvent, without its seq
  bool truncated = false;  // the event is a Truncated one
  std::optional<NodeMark> mark;
};

struct Batch {
  std::vector<QueuedEvent> entries;  // in the order queued
  uint64_t bytes = 0;
};

class EventQueue {
 public:
  struct Limits {
    uint64_t max_log_bytes_per_job = 64ull << 20;
    uint64_t max_queued_bytes = 64ull << 20;
    size_t commit_batch = 4096;
  };
  // `last_commit`: when the store last committed, for the first AwaitDue.
  explicit EventQueue(Limits limits, absl::Time last_commit = absl::Now())
      : limits_(limits), last_taken_(last_commit) {}
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // A stored job (at open, or once put): its log is `committed`. A job that
  // is already known keeps its state.
  void AddJob(uint64_t job, const LogState& committed);
  // A deleted job: its state is forgotten and its queued events dropped
  // (their marks stay queued).
  void RemoveJob(uint64_t job);

  // See JobStore::Append.
  uint64_t Append(uint64_t job, v1::JobEvent event, std::optional<NodeMark> mark);
  void Mark(NodeMark mark);

  // Everything queued, in order; it stays counted against the back-pressure
  // bound until Committed or Failed. `paced`: the commit thread's take,
  // which starts the interval AwaitDue waits out. A synchronous write's
  // (a process or a job stored before its caller is answered) does not: the
  // interval bounds the commits of flowing output, and an event that comes
  // after such a write (a spawned process's first line after its record) is
  // not held for it.
  Batch Take(bool paced = true);
  // `batch` is on disk: advances the committed seqs and returns the jobs
  // whose committed seq advanced.
  std::vector<uint64_t> Committed(const Batch& batch);
  // `batch` could not be written: it goes back to the front of the queue.
  void Failed(Batch batch);

  uint64_t CommittedSeq(uint64_t job);

  // For the commit thread: returns once something queued is due or Stop()
  // was called; true when stopped. Due: `interval` has passed since the last
  // Take() (or since this queue was made), so an event after a quiet spell is
  // committed at once and a stream of them once per interval; or
  // commit_batch entries or half the byte bound are queued.
  bool AwaitDue(absl::Duration interval);
  // When what is queued is due by time (see AwaitDue).
  absl::Time NextDue(absl::Duration interval);
  // Waits until Stop() or `timeout` (after a failed commit); true when stopped.
  bool AwaitStopFor(absl::Duration timeout);
  void Stop();

  // "output beyond 64 MiB is not kept"
  static std::string TruncatedWhy(uint64_t max_log_bytes);

 private:
  struct JobLog {
    LogState queued;  // including what is queued
    uint64_t committed_seq = 0;
  };
  // With mu_ held:
  void Push(QueuedEvent entry);
  void AwaitRoom(std::unique_lock<std::mutex>& lock);
  bool Full() const;
  absl::Time DueLocked(absl::Duration interval) const;
  void WaitUntil(std::unique_lock<std::mutex>& lock, absl::Time deadline);  // on work_

  const Limits limits_;
  // std::mutex, not absl::Mutex: ThreadSanitizer sees only the former (Debian's
  // abseil is not instrumented).
  std::mutex mu_;  // guards what follows
  absl::flat_hash_map<uint64_t, JobLog> jobs_;
  std::vector<QueuedEvent> queue_;
  uint64_t queued_bytes_ = 0;     // in queue_
  uint64_t unsettled_bytes_ = 0;  // in queue_ or taken, not yet committed
  absl::Time last_taken_;         // the last paced Take(): when the commit thread's last commit began
  bool stopped_ = false;
  // Signalled only when what a waiter waits for may have happened, not at
  // every event.
  std::condition_variable work_;  // the commit thread: the first event queued, a full batch, Stop()
  std::condition_variable room_;  // Append under back-pressure: a commit
};

}  // namespace constellation::daemon::master
