#pragma once

// MasterLink: the node's side of its master's Attach stream. It holds the
// node's EventBuffer (every event of its processes, numbered, until the
// master acknowledges it) and serves each Attach as a reactor of gRPC's
// callback API: first NodeEvent{seq 0, hello{incarnation, processes}}, then
// the buffered events the master has not stored (see EventBuffer::Resume),
// then new events as they come. Nothing polls: a stream writes when an event
// arrives or its last write completes, and ends when gRPC reports the
// master's cancellation (OnCancel), its write fails, or a newer Attach takes
// its place (at once: a stream between writes finishes there and then).
//
// `attached` and `detached` tell the node's MasterGrace when it has a master:
// `attached` for every Attach, `detached` when the current stream is lost
// (not when a newer one replaced it). They run with the link's lock held and
// must not call back into the link.
//
// Ownership: gRPC owns each stream (reactor) until its OnDone; the link must
// outlive every stream (destroy it after the server has shut down, which
// waits for them; the destructor aborts otherwise).
// Threading: every method from any thread.

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "daemon/node_events.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon {

class MasterLink {
 public:
  struct Hooks {
    std::function<void()> attached;
    std::function<void()> detached;
  };

  MasterLink(std::string incarnation, uint64_t buffer_capacity, Hooks hooks);
  ~MasterLink();
  MasterLink(const MasterLink&) = delete;
  MasterLink& operator=(const MasterLink&) = delete;

  const std::string& incarnation() const { return incarnation_; }

  // The inventory (EventBuffer::Launched/Forget).
  void Launched(const Pid& pid, pb::RunningProcess process);
  void Forget(const Pid& pid);
  // An event of a process on this node: buffered, and sent if a master listens.
  void Push(uint64_t deployment, const pb::ProcessEvent& event);
  // Node.Ack.
  void Ack(const pb::AckRequest& request);

  // Serves an Attach the caller has authorized; gRPC owns the result.
  grpc::ServerWriteReactor<pb::NodeEvent>* Attach(const pb::AttachRequest& request);
  // A stream that ends at once with `status` (a refused Attach).
  static grpc::ServerWriteReactor<pb::NodeEvent>* Refuse(grpc::Status status);

  // For tests and logs.
  bool attached() const;
  uint64_t buffered() const;

 private:
  class Stream;
  enum class Step { kNone, kWrite, kFinish };

  Step PumpLocked(Stream* stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Step FinishLocked(Stream* stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The stream cannot carry on: it finishes, and if it was the master's, the master is gone.
  void LoseLocked(Stream* stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteDone(Stream* stream, bool ok);
  void Cancelled(Stream* stream);
  void Done(Stream* stream);
  // Wakes the current stream if it is idle and there is something to send.
  void PumpCurrent() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string incarnation_;
  const Hooks hooks_;
  mutable std::mutex mu_;
  EventBuffer buffer_ ABSL_GUARDED_BY(mu_);
  Stream* current_ ABSL_GUARDED_BY(mu_) = nullptr;  // the master's stream, if any
  size_t streams_ ABSL_GUARDED_BY(mu_) = 0;         // not yet done
};

}  // namespace constellation::daemon
