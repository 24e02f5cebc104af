#pragma once

// WatchRelay: asks the master which processes the node's processes watch are
// gone (Master.Watch), for the NodeAgent, without a thread per call: each is
// an asynchronous call of gRPC's callback API whose answer goes to `answer`.
// Calls wait for the master to be ready (wait_for_ready). A call that fails
// is not repeated here: the node asks again for every pid still watched when
// the master attaches again (NodeAgent::AskAgain), and meanwhile the master's
// Node.Gone broadcast carries the verdicts it reaches.
//
// The master's address, the calls in flight and their cancellation are
// MasterCalls'; the relay builds the requests and passes the answers on.
//
// Ownership: the relay owns its calls; `answer` must stay callable until the
// relay is destroyed.
// Threading: any method from any thread; answers are given on gRPC's
// threads. Shutdown() (and the destructor) cancels the calls in flight and
// waits for their callbacks: none runs after it returns.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/master_calls.h"
#include "grpcpp/grpcpp.h"
#include "lib/core/pid.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

class WatchRelay {
 public:
  using Answer = std::function<void(const pb::GoneBatch& gone)>;
  // `credentials`: this node's, for its calls to the master.
  WatchRelay(std::shared_ptr<grpc::ChannelCredentials> credentials, Answer answer);
  ~WatchRelay();  // Shutdown()
  WatchRelay(const WatchRelay&) = delete;
  WatchRelay& operator=(const WatchRelay&) = delete;

  // Where the master is (AttachRequest.master_addr). A new address cancels
  // the calls waiting for the old one.
  void SetMaster(const std::string& addr);
  // Asks about `pids` (at most 1024) of `deployment`. Nothing before a master is set.
  void Ask(uint64_t deployment, const std::vector<Pid>& pids);
  void Shutdown();

  size_t in_flight() const;

 private:
  struct Call {
    grpc::ClientContext context;
    pb::MasterWatchRequest request;
    pb::GoneBatch answer;
  };
  void Done(std::shared_ptr<Call> call, const grpc::Status& status);

  const Answer answer_;
  MasterCalls master_;  // last: destroyed (so shut down) before answer_
};

}  // namespace constellation::daemon
