#pragma once

// Joiner: a node daemon started with --join=MASTER keeps itself a member of
// that master's cluster. The master does not know the node from nodes.toml,
// so whenever the node has no master attached (at start, after its master
// restarted or lost it) the joiner calls Master.Join with the node's address
// and capacity; the master then attaches to the node (Node.Attach) as to any
// other. Retries back off from `first_retry`, doubling, to at most
// `max_retry`; a join the master accepted but that no Attach follows within
// `attach_wait` is made again. A refusal that retrying cannot cure (the
// certificate's role, a malformed request, a master that takes no joins) is
// reported to `fatal` once and the joiner stops. Leave() (SIGTERM) stops it
// and tells the master, which drops the node at once.
//
// Threading: one thread of its own (Start .. Stop/Leave) makes the calls;
// SetAttached may come from any thread (the node's MasterLink hooks, under
// the link's lock: it only takes the joiner's own). `fatal` runs on the
// joiner's thread.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "lib/core/resources.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon {

class Joiner {
 public:
  struct Options {
    std::string master_addr;  // for messages
    std::string self_addr;    // what the master dials (--advertise, or where the node listens)
    Resources capacity;
    absl::Duration first_retry = absl::Milliseconds(500);
    absl::Duration max_retry = absl::Seconds(10);
    absl::Duration attach_wait = absl::Seconds(10);
  };
  // The calls to the master (each bounded by its own deadline).
  struct Calls {
    std::function<absl::Status(const pb::JoinRequest&)> join;
    std::function<absl::Status(const pb::LeaveRequest&)> leave;
  };
  // Master.Join and Master.Leave over gRPC to `master_addr`, each with `deadline`.
  static Calls GrpcCalls(const std::string& master_addr, std::shared_ptr<grpc::ChannelCredentials> credentials,
                         absl::Duration deadline = absl::Seconds(5));

  Joiner(Options options, Calls calls, std::function<void(const absl::Status&)> fatal);
  ~Joiner();  // Stop()
  Joiner(const Joiner&) = delete;
  Joiner& operator=(const Joiner&) = delete;

  void Start();
  // Whether a master's Attach stream is open (MasterLink's hooks).
  void SetAttached(bool attached);
  // Stops joining; if a join ever succeeded, tells the master the node
  // leaves (bounded by the call's deadline) and returns its answer.
  absl::Status Leave();
  // Stops joining, says nothing. Idempotent.
  void Stop();

  int joins() const;  // calls made so far (for tests)

 private:
  void Loop();
  static bool Permanent(const absl::Status& status);

  const Options options_;
  const Calls calls_;
  const std::function<void(const absl::Status&)> fatal_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool attached_ = false;  // guarded by mu_
  uint64_t detaches_ = 0;  // guarded by mu_: how many times an Attach was lost
  bool stopping_ = false;  // guarded by mu_
  bool joined_ = false;    // guarded by mu_: a join succeeded once
  int joins_ = 0;          // guarded by mu_
  std::thread thread_;
};

}  // namespace constellation::daemon
