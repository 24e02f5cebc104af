#pragma once

// The bookkeeping of a client that outlives its master's restarts, with no
// I/O and no clock of its own (the caller passes the time), so tests drive it
// by hand:
//
//   Retry      when to try a call again after the master did not answer, and
//              when to give up (a budget of time without progress).
//   WatchCursor which events of a Watch stream are new: a reconnect asks
//              from the last seq seen, and anything at or below it that a
//              server sends again is dropped, so nothing is printed twice.
//
// Thread-compatible: one thread uses each object.

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/jobs.pb.h"

namespace constellation::cli {

// Whether a call that failed with `status` may succeed if made again against
// the same master: it was away (restarting, unreachable). `streaming` adds the
// codes a stream that breaks mid-way ends with.
bool IsRetryable(const absl::Status& status, bool streaming);

// Attempts of one operation against a master that may be away. The budget
// counts from the first failure after the last progress; the waits between
// attempts grow from 100 ms to 2 s and never pass the budget's end.
class Retry {
 public:
  explicit Retry(absl::Duration budget) : budget_(budget) {}

  // The operation moved forward (an answer, an event): the next failure
  // starts a fresh budget and the shortest wait.
  void Progress();

  // After an attempt that ended at `now` with `status`: how long to wait
  // before the next attempt, or the error to give up with (`status` itself
  // when it is not retryable, else UNAVAILABLE saying how long it tried).
  absl::StatusOr<absl::Duration> Failed(absl::Time now, const absl::Status& status, bool streaming = false);

  absl::Duration budget() const { return budget_; }

 private:
  absl::Duration budget_;
  std::optional<absl::Time> failing_since_;
  absl::Duration next_wait_ = kFirstWait;

  static constexpr absl::Duration kFirstWait = absl::Milliseconds(100);
  static constexpr absl::Duration kLongestWait = absl::Seconds(2);
};

// Where a Watch is in a job's event log, across reconnects.
class WatchCursor {
 public:
  // Starts after event `from_seq` (0: from the first).
  explicit WatchCursor(uint64_t from_seq) : last_seq_(from_seq) {}

  // What a (re)connecting Watch asks for: events after this one.
  uint64_t from_seq() const { return last_seq_; }

  // Takes `event` as delivered if it is new (seq above the last one); false
  // for a repeat, which the caller drops.
  bool Accept(const v1::JobEvent& event);

  // Events with a seq that skipped over numbers (the log has no gaps: a
  // skip means something was lost between server and client).
  uint64_t gaps() const { return gaps_; }

 private:
  uint64_t last_seq_;
  uint64_t gaps_ = 0;
};

}  // namespace constellation::cli
