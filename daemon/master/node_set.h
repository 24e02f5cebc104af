#pragma once

// NodeSet: the master's membership of its nodes. It holds a NodeClient for
// each node (those of nodes.toml, and those that joined: Master.Join) and a
// thread per node that keeps the node's Attach stream open: when the stream
// starts the node is up (its hello says what it runs), every message after it
// is an event, and when the stream ends the node is lost; the thread then
// tries again after a pause. What the events mean is the handler's business
// (the job manager).
//
// Joined nodes: Join adds one (or takes back one that left or was lost at the
// same address); Leave drops it at once (its stream is cancelled, the handler
// hears OnNodeDown); a joined node that has not been up for `forget_after` is
// dropped too (it joins again by itself when it comes back). Configured nodes
// never leave. A dropped entry keeps its client until the set is destroyed
// (callers hold NodeClient pointers without a lock), so the number of
// addresses ever seen is bounded (kMaxAddresses), and so is the number of
// nodes at once (Options::max_nodes).
//
// Threading: one thread per node, started by Start() (or Join, once started)
// and joined by Stop(), Leave() or a re-join, calls the handler; the handler
// must not call back into Stop, Join or Leave from it. Everything else may
// come from any thread.

#include <condition_variable>
#include <functional>
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
  // The stream of a node that was up ended (or it left).
  virtual void OnNodeDown(const std::string& addr, const absl::Status& why) = 0;
};

enum class NodeState { kConnecting, kUp, kLost };
const char* NodeStateName(NodeState state);  // "connecting", "up", "lost"

struct NodeSpec {
  std::unique_ptr<NodeClient> client;
  Resources capacity;
};

// One node as `cdeploy nodes` shows it.
struct NodeView {
  std::string addr;
  NodeState state = NodeState::kConnecting;
  Resources capacity;
  bool joined = false;  // by Master.Join, not from nodes.toml
};

class NodeSet {
 public:
  // Nodes at once (configured and joined).
  static constexpr size_t kMaxNodes = 1024;
  // Addresses remembered (every client lives until destruction).
  static constexpr size_t kMaxAddresses = 4096;

  struct Options {
    // The pause between attempts to attach to a node that is not up.
    absl::Duration retry = absl::Milliseconds(500);
    // Makes the client of a node that joins; null: joins are refused.
    std::function<std::unique_ptr<NodeClient>(const std::string& addr)> make_client;
    size_t max_nodes = kMaxNodes;
    // A joined node not up for this long is dropped.
    absl::Duration forget_after = absl::Minutes(10);
  };

  NodeSet(std::vector<NodeSpec> nodes, absl::Duration retry = absl::Milliseconds(500));
  NodeSet(std::vector<NodeSpec> nodes, Options options);
  ~NodeSet();  // Stop()
  // Ends every stream and joins the threads: no handler call after it. Idempotent.
  void Stop();

  // Starts attaching, calling `handler` (which must outlive this) from then on.
  void Start(NodeEventHandler* handler);
  // Waits until every node of nodes.toml is up or `timeout` has passed;
  // returns how many are (joined nodes are not waited for).
  size_t WaitUp(absl::Duration timeout);

  // Master.Join from `who` (the caller's identity; "" when insecure): adds
  // the node at `addr` with `capacity`, or, for one that is known but not
  // up, dials it again now (a joined one takes the new capacity and owner).
  // ALREADY_EXISTS when a node at `addr` is up; RESOURCE_EXHAUSTED past the
  // bounds; UNAVAILABLE while stopping or while another Join or Leave of
  // `addr` runs; FAILED_PRECONDITION when joins are off.
  absl::Status Join(const std::string& addr, Resources capacity, const std::string& who);
  // Master.Leave: drops the joined node at `addr`; returns once the handler
  // has heard of it (OnNodeDown, if it was up). NOT_FOUND for no such joined
  // node, FAILED_PRECONDITION for one of nodes.toml, PERMISSION_DENIED when
  // `who` is not the identity that joined it.
  absl::Status Leave(const std::string& addr, const std::string& who);

  // nullptr for an address never seen (a node that left keeps its client).
  NodeClient* client(const std::string& addr) const;
  // The nodes present (not those that left), in address order.
  std::vector<std::string> addrs() const;
  std::vector<NodeView> List() const;
  Resources capacity(const std::string& addr) const;
  NodeState state(const std::string& addr) const;
  std::vector<std::string> up() const;

 private:
  struct Node {
    std::unique_ptr<NodeClient> client;  // set once, never replaced
    Resources capacity;
    NodeState state = NodeState::kConnecting;
    bool joined = false;
    std::string joined_by;
    bool removed = false;            // left or forgotten: hidden; its thread ends
    bool busy = false;               // a Join or Leave is joining its thread
    bool retry_now = false;          // a Join asks to dial it again at once
    absl::Time down_since;           // when it last stopped being up (or joined)
    AttachStream* stream = nullptr;  // the open Attach, cancelled at shutdown
    std::thread thread;
  };
  void StartThreadLocked(const std::string& addr, Node& node);
  size_t PresentLocked() const;
  void AttachLoop(const std::string& addr, Node* node);
  // Reads one Attach stream to its end; whether the node came up on it.
  bool HoldStream(const std::string& addr, Node& node, AttachStream& stream, absl::Status* why);
  // Takes `node`'s thread out under the lock (busy), joins it without.
  void JoinThread(std::unique_lock<std::mutex>& lock, Node& node);

  const Options options_;
  NodeEventHandler* handler_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_. Entries are never erased before destruction: a Node&
  // and its client stay valid.
  std::map<std::string, Node> nodes_;
  size_t configured_ = 0;  // the first nodes, from nodes.toml
  bool started_ = false;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace constellation::daemon::master
