#pragma once

// GoneBroadcast: carries the master's verdicts on processes (pb::ProcessGone:
// how a process ended, or that its node was lost) to the nodes whose
// processes may hold channels to them (Node.Gone), so that those channels
// end with the reason instead of waiting.
//
// Batched and asynchronous: Queue() only records; Flush() starts, for each
// (node, deployment) with verdicts queued and no call in flight, one call
// with up to kMaxBatch of them (what is queued meanwhile goes in the next
// call). A slow node delays only its own verdicts, and nothing waits for a
// node while holding the caller's lock. A failed call is tried again after
// `retry` (the node is up: the verdict must reach it); NodeDown() drops what
// is queued for a node, which asks again (Master.Watch) when it attaches.
//
// Memory: what is queued for a node is bounded by the verdicts of the
// deployments it runs (a verdict per process, once); NodeDown and deployment
// ends (Forget) release it.
//
// Ownership: `clients` and `timers` must outlive it; timers must not run its
// retries after it is destroyed (destroy the timers first).
// Threading: thread-safe; NodeClient::Gone and the timers' callbacks are
// called without its lock held.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "daemon/master/node_client.h"
#include "daemon/master/timers.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon::master {

class GoneBroadcast {
 public:
  // The client of a node (nullptr: unknown, its verdicts are dropped).
  using ClientOf = std::function<NodeClient*(const std::string& addr)>;
  // Verdicts per call (as Master.Watch's bound).
  static constexpr int kMaxBatch = 1024;

  GoneBroadcast(ClientOf clients, Timers* timers, absl::Duration retry = absl::Seconds(1));
  ~GoneBroadcast();  // Shutdown()
  GoneBroadcast(const GoneBroadcast&) = delete;
  GoneBroadcast& operator=(const GoneBroadcast&) = delete;

  // Records `gone` (of `deployment`) for `node`; sent at the next Flush().
  void Queue(const std::string& node, uint64_t deployment, const pb::ProcessGone& gone);
  // Starts the calls that can start (see above). Call without locks the
  // clients' callbacks take (FakeNodeClient answers on the caller's thread).
  void Flush();
  // The node's stream ended: what is queued for it is dropped, a call in
  // flight is not retried.
  void NodeDown(const std::string& node);
  // The deployment ended: nothing more of it is sent.
  void Forget(uint64_t deployment);

  // No call starts after it; waits for the calls in flight (bounded by the
  // clients' deadlines). Idempotent.
  void Shutdown();

  // Calls in flight, verdicts queued (for tests).
  size_t in_flight() const;
  size_t queued() const;

 private:
  using Key = std::pair<std::string, uint64_t>;  // node, deployment
  struct Outbox {
    std::vector<pb::ProcessGone> queued;
    bool in_flight = false;
    bool retry_due = false;  // waits for its retry timer
    bool forgotten = false;  // its deployment ended while a call was in flight
  };
  struct Call {
    Key key;
    uint64_t epoch = 0;
    pb::GoneBatch batch;
  };
  // Takes what can go now, marking it in flight.
  std::vector<Call> TakeReadyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Send(Call call);
  void Retry(const Key& key);
  void Done(const Key& key, uint64_t epoch, pb::GoneBatch batch, const absl::Status& status);

  const ClientOf clients_;
  Timers* const timers_;
  const absl::Duration retry_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, Outbox> outboxes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> epochs_ ABSL_GUARDED_BY(mu_);  // bumped by NodeDown
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// Flushes a broadcast when it goes out of scope: declared before a lock
// guard, it flushes once that lock is released.
class FlushGone {
 public:
  explicit FlushGone(GoneBroadcast* broadcast) : broadcast_(broadcast) {}
  ~FlushGone() { broadcast_->Flush(); }
  FlushGone(const FlushGone&) = delete;
  FlushGone& operator=(const FlushGone&) = delete;

 private:
  GoneBroadcast* const broadcast_;
};

}  // namespace constellation::daemon::master
