#pragma once

// NodeSet: the master's membership of its nodes. For each node of
// nodes.toml it holds a NodeClient and a thread that keeps the node's Attach
// stream open: when the stream starts the node is up (its hello says what it
// runs), every message after it is an event, and when the stream ends the
// node is lost; the thread then tries again after a pause. What the events
// mean is the handler's business (the job manager).
//
// Threading: one thread per node, started by Start() and joined by the
// destructor, calls the handler; the handler must not call back into
// NodeSet::Stop from it. State queries may come from any thread.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/master/node_client.h"
#include "lib/core/resources.h"

namespace constellation::daemon::master {

class NodeEventHandler {
 public:
  virtual ~NodeEventHandler() = default;
  // What to ask for when attaching: what the master has stored of the node's events.
  virtual pb::AttachRequest AttachRequestFor(const std::string& addr) = 0;
  // The node answered; `hello` lists what it runs.
  virtual void OnNodeUp(const std::string& addr, const pb::NodeHello& hello) = 0;
  // One event of the node's incarnation `incarnation`, in order.
  virtual void OnNodeEvent(const std::string& addr, const std::string& incarnation, const pb::NodeEvent& event) = 0;
  // The stream of a node that was up ended.
  virtual void OnNodeDown(const std::string& addr, const absl::Status& why) = 0;
};

enum class NodeState { kConnecting, kUp, kLost };
const char* NodeStateName(NodeState state);  // "connecting", "up", "lost"

struct NodeSpec {
  std::unique_ptr<NodeClient> client;
  Resources capacity;
};

class NodeSet {
 public:
  // `retry`: the pause between attempts to attach to a node that is not up.
  NodeSet(std::vector<NodeSpec> nodes, absl::Duration retry = absl::Milliseconds(500));
  ~NodeSet();  // Stop()
  // Ends every stream and joins the threads: no handler call after it. Idempotent.
  void Stop();

  // Starts attaching, calling `handler` (which must outlive this) from then on.
  void Start(NodeEventHandler* handler);
  // Waits until every node is up or `timeout` has passed; returns how many are.
  size_t WaitUp(absl::Duration timeout);

  // nullptr for an unknown address.
  NodeClient* client(const std::string& addr) const;
  std::vector<std::string> addrs() const;
  Resources capacity(const std::string& addr) const;
  NodeState state(const std::string& addr) const;
  std::vector<std::string> up() const;

 private:
  struct Node {
    std::unique_ptr<NodeClient> client;
    Resources capacity;
    NodeState state = NodeState::kConnecting;
    AttachStream* stream = nullptr;  // the open Attach, cancelled at shutdown
  };
  void AttachLoop(const std::string& addr);
  // Reads one Attach stream to its end; whether the node came up on it.
  bool HoldStream(const std::string& addr, Node& node, AttachStream& stream, absl::Status* why);

  const absl::Duration retry_;
  NodeEventHandler* handler_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Node> nodes_;  // the map is fixed at construction; fields guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace constellation::daemon::master
