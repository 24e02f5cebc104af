#pragma once

// ControlLink: this process's end of its connection to its monitor, and
// through the monitor to the bridge (local mode) or the node agent (cluster
// mode). Out go spawn requests (one at a time, a big one in chunks), watch
// requests for the data plane's peers, and, at exit, the report of channel
// data left undelivered. Back come spawn replies and the verdicts
// (ProcessGone) on watched processes. What comes back is read by OnReadable,
// which the data plane's loop thread runs whenever the connection is
// readable, so no thread of this process waits on it: spawn() waits for its
// reply on a condition variable.
//
// Ownership: one per process (made by init(), never destroyed); it does not
// own the fd (the process keeps it for its life).
// Threading: thread-safe; OnReadable on one thread at a time (the loop).

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/core/pid.h"
#include "proto/local.pb.h"

namespace constellation::process_internal {

class ControlLink {
 public:
  // A verdict on a watched process: the status its channels end with, and
  // whether its node was lost (then nothing more can arrive from it).
  using GoneHandler = std::function<void(const Pid&, absl::Status, bool node_lost)>;
  // The same verdict as received (for monitors, lib/process/monitor_table.h).
  using VerdictHandler = std::function<void(const Pid&, const pb::ProcessGone&)>;

  // `fabric`: cluster mode (only for the wording of errors).
  ControlLink(int fd, bool fabric) : fd_(fd), fabric_(fabric) {}
  ControlLink(const ControlLink&) = delete;
  ControlLink& operator=(const ControlLink&) = delete;

  // Set once, before the first Watch.
  void SetGoneHandler(GoneHandler handler) { on_gone_ = std::move(handler); }
  // Set once, before the first Watch; called before the GoneHandler.
  void SetVerdictHandler(VerdictHandler handler) { on_verdict_ = std::move(handler); }

  // A fresh id for a spawn request.
  uint64_t NextRequestId();
  // Sends a spawn request (whose id came from NextRequestId) and waits for
  // its reply; UNAVAILABLE if the connection broke.
  absl::StatusOr<pb::SpawnReply> Call(const pb::SpawnRequest& request);
  // Asks to be told (through the GoneHandler, once) when `pid` is gone.
  void Watch(const Pid& pid);
  // The exit flush left `bytes` undelivered to `peers` processes: the monitor
  // then reports the exit as a failure (code 74) unless it failed already.
  void ReportUndelivered(uint64_t bytes, uint32_t peers);
  // Reads every packet that has arrived, without waiting.
  void OnReadable();

 private:
  absl::Status Send(const pb::LocalMessage& message);
  void Broken(absl::Status why);

  const int fd_;
  const bool fabric_;
  GoneHandler on_gone_;
  VerdictHandler on_verdict_;
  std::mutex send_mu_;  // one packet (or chunked request) written at a time
  std::mutex mu_;
  std::condition_variable replies_cv_;
  uint64_t next_request_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, pb::SpawnReply> replies_ ABSL_GUARDED_BY(mu_);  // read, not yet taken
  absl::Status connection_ ABSL_GUARDED_BY(mu_);                     // once broken, for good
};

// The process-wide instance: made by init() on the monitor connection, never
// destroyed. DefaultControlLink aborts before that.
void InstallControlLink(int fd, bool fabric);
ControlLink& DefaultControlLink();

// The error a channel to a gone process ends with (UNAVAILABLE), from the
// verdict: exited with a code, killed by a signal, out of memory, node lost,
// or no such process.
absl::Status GoneStatus(const Pid& pid, const pb::ProcessGone& gone);

}  // namespace constellation::process_internal
