#pragma once

// SpawnRelay: hands the spawn requests of a node's processes to the master
// (Master.Spawn) and their answers back, without a thread per call: each is
// an asynchronous call of gRPC's callback API whose completion answers
// through the NodeAgent's reply function. Calls wait for the master to be
// ready (wait_for_ready), so a spawn made while the master restarts goes
// through once it is back; NodeService cancels them (CancelAll) when its
// master grace runs out.
//
// The master's address, the calls in flight and their cancellation are
// MasterCalls'; the relay builds the requests and gives the replies.
//
// Ownership: the relay owns its calls; the reply functions it is given must
// stay callable until the relay is destroyed (NodeAgent outlives it).
// Threading: any method from any thread; replies are given on gRPC's threads
// (or, for a call that fails at once, on the caller's). Shutdown() (and the
// destructor) cancels the calls in flight and waits for their callbacks:
// none runs after it returns, and later requests are refused at once.

#include <memory>
#include <string>

#include "daemon/master_calls.h"
#include "daemon/node_agent.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

class SpawnRelay {
 public:
  // `credentials`: this node's, for its calls to the master.
  explicit SpawnRelay(std::shared_ptr<grpc::ChannelCredentials> credentials);
  ~SpawnRelay();  // Shutdown()
  SpawnRelay(const SpawnRelay&) = delete;
  SpawnRelay& operator=(const SpawnRelay&) = delete;

  // Where the master is (AttachRequest.master_addr). A new address cancels
  // the calls waiting for the old one.
  void SetMaster(const std::string& addr);

  // Asks the master to spawn; `reply` is called once, with the master's
  // answer or the error (UNAVAILABLE before any master was set).
  void Relay(uint64_t deployment, const pb::SpawnRequest& request, NodeAgent::Reply reply);

  // Cancels every call in flight (they answer CANCELLED).
  void CancelAll();

  // Refuses new requests, cancels those in flight and waits for their
  // replies. Call it while the reply functions still work.
  void Shutdown();

  size_t in_flight() const;

 private:
  struct Call {
    grpc::ClientContext context;
    pb::MasterSpawnRequest request;
    pb::SpawnReply answer;
    NodeAgent::Reply reply;
  };
  void Done(std::shared_ptr<Call> call, const grpc::Status& status);

  MasterCalls master_;
};

}  // namespace constellation::daemon
