#pragma once

// Prints a job's events (constellation.v1.JobEvent) in DESIGN.md's output
// formats, as local mode prints a program: process events (spawn, output,
// exit) go to an OutputFormatter and are flushed one by one; a Truncated
// event is one line on stderr (stdout stays the program's, or pure JSON);
// state changes are not printed but remembered.
//
// And what cdeploy exits with once the job has ended (ExitOf).
//
// The formatter and `err` must outlive the printer. Not thread-safe: one
// thread prints.

#include <cstdio>
#include <optional>
#include <string>

#include "lib/process/output_format.h"
#include "proto/jobs.pb.h"

namespace constellation::cli {

// The exit code of cdeploy's own failures (a program's own codes pass through).
inline constexpr int kCdeployError = 2;

class EventPrinter {
 public:
  EventPrinter(internal::OutputFormatter* out, FILE* err) : out_(out), err_(err) {}
  EventPrinter(const EventPrinter&) = delete;
  EventPrinter& operator=(const EventPrinter&) = delete;

  void Print(const v1::JobEvent& event);

  // The last state change seen, if any.
  const std::optional<v1::StateChange>& last_state() const { return last_state_; }
  // Whether a process of the job has run (a RUNNING state or a process event).
  bool ran() const { return ran_; }
  // Process events whose pid could not be read (skipped).
  int skipped() const { return skipped_; }

 private:
  void PrintProcess(const pb::ProcessEvent& event);

  internal::OutputFormatter* out_;
  FILE* err_;
  std::optional<v1::StateChange> last_state_;
  bool ran_ = false;
  int skipped_ = 0;
};

// "12 bytes of output were not kept: the job's log is full (64 MiB)".
std::string DescribeTruncated(const v1::Truncated& truncated);

bool IsFinished(v1::JobState state);

// "succeeded", "running", ...
std::string StateName(v1::JobState state);

// How cdeploy ends once job `job_id` has finished with `final`.
struct Exit {
  int code = 0;
  std::string error;  // non-empty: printed as "cdeploy: <error>" on stderr
};

// `ran`: a process of the job ran (else it failed to start: exit 2 with the
// reason, as cdeploy's own errors). `interrupted_by`: the signal with which
// this cdeploy cancelled the job, 0 if it did not (then 128+signal, as a
// shell reports an interrupted command).
Exit ExitOf(const std::string& job_id, const v1::StateChange& final, bool ran, int interrupted_by);

}  // namespace constellation::cli
