#include "daemon/master/node_set.h"

#include "absl/strings/str_cat.h"
#include "daemon/log/log.h"

namespace constellation::daemon::master {

const char* NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kConnecting:
      return "connecting";
    case NodeState::kUp:
      return "up";
    case NodeState::kLost:
      return "lost";
  }
  return "?";
}

NodeSet::NodeSet(std::vector<NodeSpec> nodes, absl::Duration retry) : NodeSet(std::move(nodes), Options{retry}) {}

NodeSet::NodeSet(std::vector<NodeSpec> nodes, Options options) : options_(std::move(options)) {
  for (NodeSpec& spec : nodes) {
    std::string addr = spec.client->addr();
    Node& node = nodes_[addr];
    node.client = std::move(spec.client);
    node.capacity = spec.capacity;
  }
  configured_ = nodes_.size();
}

NodeSet::~NodeSet() { Stop(); }

void NodeSet::Stop() {
  std::vector<std::thread> threads;
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [addr, node] : nodes_) {
      if (node.stream != nullptr) node.stream->Cancel();
    }
    cv_.notify_all();
    // A Join or Leave joining a thread finishes first (it holds no lock the thread needs).
    cv_.wait(lock, [this] {
      for (const auto& [addr, node] : nodes_) {
        if (node.busy) return false;
      }
      return true;
    });
    for (auto& [addr, node] : nodes_) {
      if (node.thread.joinable()) threads.push_back(std::move(node.thread));
    }
  }
  for (std::thread& thread : threads) thread.join();
}

void NodeSet::Start(NodeEventHandler* handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handler_ = handler;
  started_ = true;
  for (auto& [addr, node] : nodes_) {
    if (!node.removed) StartThreadLocked(addr, node);
  }
}

void NodeSet::StartThreadLocked(const std::string& addr, Node& node) {
  node.thread = std::thread([this, addr, n = &node] { AttachLoop(addr, n); });
}

size_t NodeSet::PresentLocked() const {
  size_t n = 0;
  for (const auto& [addr, node] : nodes_) n += node.removed ? 0 : 1;
  return n;
}

size_t NodeSet::WaitUp(absl::Duration timeout) {
  auto count = [this] {
    size_t n = 0;
    for (const auto& [addr, node] : nodes_) n += !node.joined && node.state == NodeState::kUp ? 1 : 0;
    return n;
  };
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return count() == configured_ || stopping_; });
  return count();
}

absl::Status NodeSet::Join(const std::string& addr, Resources capacity, const std::string& who) {
  if (!options_.make_client) return absl::FailedPreconditionError("this master takes no joins");
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("the master is stopping");
  auto it = nodes_.find(addr);
  if (it != nodes_.end() && it->second.busy) {
    return absl::UnavailableError(absl::StrCat("a join or leave of ", addr, " is under way: try again"));
  }
  if (it != nodes_.end() && !it->second.removed) {
    Node& node = it->second;
    if (node.state == NodeState::kUp) {
      return absl::AlreadyExistsError(absl::StrCat("a node at ", addr, " is attached and alive"));
    }
    if (node.joined) {  // the same node back, or another one in its place: its word now
      node.capacity = capacity;
      node.joined_by = who;
    }
    node.retry_now = true;
    cv_.notify_all();
    return absl::OkStatus();
  }
  if (PresentLocked() >= options_.max_nodes) {
    return absl::ResourceExhaustedError(absl::StrCat("the cluster has ", options_.max_nodes, " nodes, its most"));
  }
  if (it == nodes_.end()) {
    if (nodes_.size() >= kMaxAddresses) {
      return absl::ResourceExhaustedError(
          absl::StrCat(kMaxAddresses, " node addresses have joined since the master started, its most"));
    }
    it = nodes_.emplace(addr, Node()).first;
    it->second.client = options_.make_client(addr);
  } else {
    JoinThread(lock, it->second);  // the thread of its previous stay has ended, or ends now
    if (stopping_) return absl::UnavailableError("the master is stopping");
  }
  Node& node = it->second;
  node.removed = false;
  node.joined = true;
  node.joined_by = who;
  node.capacity = capacity;
  node.state = NodeState::kConnecting;
  node.retry_now = false;
  node.down_since = absl::Now();
  if (started_) StartThreadLocked(addr, node);
  return absl::OkStatus();
}

absl::Status NodeSet::Leave(const std::string& addr, const std::string& who) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = nodes_.find(addr);
  if (it == nodes_.end() || it->second.removed) {
    return absl::NotFoundError(absl::StrCat("no node at ", addr, " is in the cluster"));
  }
  Node& node = it->second;
  if (!node.joined) {
    return absl::FailedPreconditionError(absl::StrCat(addr, " is listed in nodes.toml: it does not leave"));
  }
  if (node.joined_by != who) {
    return absl::PermissionDeniedError(absl::StrCat("the node at ", addr, " was joined by another identity"));
  }
  if (node.busy) return absl::UnavailableError(absl::StrCat("a join or leave of ", addr, " is under way: try again"));
  node.removed = true;
  if (node.stream != nullptr) node.stream->Cancel();
  cv_.notify_all();
  JoinThread(lock, node);  // its OnNodeDown has run: the node's processes are accounted for
  node.state = NodeState::kLost;
  return absl::OkStatus();
}

void NodeSet::JoinThread(std::unique_lock<std::mutex>& lock, Node& node) {
  std::thread thread = std::move(node.thread);
  node.busy = true;
  lock.unlock();  // the thread takes mu_ on its way out
  if (thread.joinable()) thread.join();
  lock.lock();
  node.busy = false;
  cv_.notify_all();  // Stop may wait for it
}

void NodeSet::AttachLoop(const std::string& addr, Node* node) {
  while (true) {
    pb::AttachRequest request = handler_->AttachRequestFor(addr);
    std::unique_ptr<AttachStream> stream = node->client->Attach(request);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || node->removed) return;
      node->stream = stream.get();
    }
    absl::Status why;
    bool was_up = HoldStream(addr, *node, *stream, &why);
    bool left = false;
    bool forgotten = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      node->stream = nullptr;
      if (stopping_) return;
      left = node->removed;
      if (!left && !was_up && node->joined && absl::Now() - node->down_since >= options_.forget_after) {
        node->removed = forgotten = true;
      }
    }
    if (was_up) handler_->OnNodeDown(addr, left ? absl::CancelledError("it left the cluster") : why);
    if (left) return;
    if (forgotten) {
      LogWarning("join", "joined node %s was not up for %s: dropped (it may join again)", addr,
                 absl::FormatDuration(options_.forget_after));
      return;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.retry),
                 [this, node] { return stopping_ || node->removed || node->retry_now; });
    node->retry_now = false;
    if (stopping_ || node->removed) return;
  }
}

bool NodeSet::HoldStream(const std::string& addr, Node& node, AttachStream& stream, absl::Status* why) {
  pb::NodeEvent message;
  bool up = false;
  std::string incarnation;
  while (stream.Read(&message)) {
    if (!up) {
      if (!message.has_hello()) break;  // not a node of this protocol
      incarnation = message.hello().incarnation();
      handler_->OnNodeUp(addr, message.hello());
      {
        std::lock_guard<std::mutex> lock(mu_);
        node.state = NodeState::kUp;
      }
      cv_.notify_all();
      up = true;
      continue;
    }
    handler_->OnNodeEvent(addr, incarnation, message);
  }
  if (!up) stream.Cancel();  // it spoke another protocol: end the call

  *why = stream.Finish();
  if (up) {
    std::lock_guard<std::mutex> lock(mu_);
    node.state = NodeState::kLost;
    node.down_since = absl::Now();
  }
  return up;
}

NodeClient* NodeSet::client(const std::string& addr) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(addr);
  return it == nodes_.end() ? nullptr : it->second.client.get();
}

std::vector<std::string> NodeSet::addrs() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [addr, node] : nodes_) {
    if (!node.removed) out.push_back(addr);
  }
  return out;
}

std::vector<NodeView> NodeSet::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<NodeView> out;
  for (const auto& [addr, node] : nodes_) {
    if (!node.removed) out.push_back({addr, node.state, node.capacity, node.joined});
  }
  return out;
}

Resources NodeSet::capacity(const std::string& addr) const {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.at(addr).capacity;
}

NodeState NodeSet::state(const std::string& addr) const {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.at(addr).state;
}

std::vector<std::string> NodeSet::up() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [addr, node] : nodes_) {
    if (!node.removed && node.state == NodeState::kUp) out.push_back(addr);
  }
  return out;
}

}  // namespace constellation::daemon::master
