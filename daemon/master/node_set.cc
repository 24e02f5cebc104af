#include "daemon/master/node_set.h"

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

NodeSet::NodeSet(std::vector<NodeSpec> nodes, absl::Duration retry) : retry_(retry) {
  for (NodeSpec& spec : nodes) {
    std::string addr = spec.client->addr();
    Node& node = nodes_[addr];
    node.client = std::move(spec.client);
    node.capacity = spec.capacity;
  }
}

NodeSet::~NodeSet() { Stop(); }

void NodeSet::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [addr, node] : nodes_) {
      if (node.stream != nullptr) node.stream->Cancel();
    }
  }
  cv_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void NodeSet::Start(NodeEventHandler* handler) {
  handler_ = handler;
  for (const auto& [addr, node] : nodes_) threads_.emplace_back([this, a = addr] { AttachLoop(a); });
}

size_t NodeSet::WaitUp(absl::Duration timeout) {
  auto count = [this] {
    size_t n = 0;
    for (const auto& [addr, node] : nodes_) n += node.state == NodeState::kUp ? 1 : 0;
    return n;
  };
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return count() == nodes_.size() || stopping_; });
  return count();
}

void NodeSet::AttachLoop(const std::string& addr) {
  Node& node = nodes_.at(addr);  // the map never changes shape
  while (true) {
    pb::AttachRequest request = handler_->AttachRequestFor(addr);
    std::unique_ptr<AttachStream> stream = node.client->Attach(request);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      node.stream = stream.get();
    }
    absl::Status why;
    bool was_up = HoldStream(addr, node, *stream, &why);
    {
      std::lock_guard<std::mutex> lock(mu_);
      node.stream = nullptr;
      if (stopping_) return;
    }
    if (was_up) handler_->OnNodeDown(addr, why);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(retry_), [this] { return stopping_; });
    if (stopping_) return;
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
  }
  return up;
}

NodeClient* NodeSet::client(const std::string& addr) const {
  auto it = nodes_.find(addr);
  return it == nodes_.end() ? nullptr : it->second.client.get();
}

std::vector<std::string> NodeSet::addrs() const {
  std::vector<std::string> out;
  for (const auto& [addr, node] : nodes_) out.push_back(addr);
  return out;
}

Resources NodeSet::capacity(const std::string& addr) const { return nodes_.at(addr).capacity; }

NodeState NodeSet::state(const std::string& addr) const {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.at(addr).state;
}

std::vector<std::string> NodeSet::up() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [addr, node] : nodes_) {
    if (node.state == NodeState::kUp) out.push_back(addr);
  }
  return out;
}

}  // namespace constellation::daemon::master
