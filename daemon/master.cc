#include "daemon/master.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "daemon/grpc_util.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

Master::Master(ClusterConfig config, std::string self_addr, std::unique_ptr<BinaryCache> cache,
               const security::Credentials& credentials)
    : config_(std::move(config)),
      self_addr_(std::move(self_addr)),
      cache_(std::move(cache)),
      authz_(credentials.insecure()) {
  for (const NodeConfig& node : config_.nodes) {
    Node& n = nodes_[node.fabric_addr];
    n.addr = node.fabric_addr;
    n.capacity = node.capacity;
    n.stub = pb::Node::NewStub(NodeChannel(node.fabric_addr, credentials.ChannelCredentials()));
  }
}

Master::~Master() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    // The Attach streams block in Read until the node speaks: end them.
    for (grpc::ClientContext* call : attach_calls_) call->TryCancel();
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

size_t Master::Start(absl::Duration timeout) {
  for (const auto& [addr, node] : nodes_) threads_.emplace_back([this, a = addr] { AttachLoop(a); });
  auto up = [this] {
    size_t n = 0;
    for (const auto& [addr, node] : nodes_) n += node.up ? 1 : 0;
    return n;
  };
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return up() == nodes_.size(); });
  return up();
}

// Holds the node's Attach stream, reading its processes' events; when the
// stream ends the node is lost; then tries again every half second.
void Master::AttachLoop(std::string addr) {
  std::shared_ptr<pb::Node::Stub> stub;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stub = nodes_[addr].stub;
  }
  while (true) {
    grpc::ClientContext context;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
      attach_calls_.insert(&context);
    }
    pb::AttachRequest request;
    request.set_master_addr(self_addr_);
    std::unique_ptr<grpc::ClientReader<pb::NodeEvent>> reader = stub->Attach(&context, request);
    // The node's first message (deployment 0, no event) says it is there.
    bool connected = false;
    pb::NodeEvent event;
    while (reader->Read(&event)) {
      if (!connected) {
        connected = true;
        NodeUp(addr);
      }
      if (!event.has_event()) continue;
      std::lock_guard<std::mutex> lock(mu_);
      DeliverLocked(event.deployment(), event.event());
      cv_.notify_all();
    }
    grpc::Status status = reader->Finish();
    {
      std::lock_guard<std::mutex> lock(mu_);
      attach_calls_.erase(&context);
    }
    if (connected) NodeLost(addr, status.error_message());
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
  }
}

void Master::NodeUp(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  Node& node = nodes_[addr];
  if (node.up) return;
  node.up = true;
  node.binaries.clear();  // it may have restarted with an empty cache
  scheduler_.AddNode(addr, node.capacity).IgnoreError();
  CollectGrantsLocked();
  cv_.notify_all();
}

void Master::NodeLost(const std::string& addr, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  Node& node = nodes_[addr];
  if (!node.up) return;
  node.up = false;
  absl::StatusOr<std::vector<scheduler::Allocation>> freed = scheduler_.RemoveNode(addr);
  std::vector<Pid> lost;
  for (const auto& [pid, process] : processes_) {
    if (process.node == addr) lost.push_back(pid);
  }
  for (const Pid& pid : lost) {
    pb::ProcessEvent event;
    *event.mutable_pid() = ToProto(pid);
    event.mutable_exit()->set_signal(SIGKILL);
    event.mutable_exit()->set_error(absl::StrCat("node ", addr, " was lost", why.empty() ? "" : ": ", why));
    DeliverLocked(processes_[pid].deployment, event);
  }
  CollectGrantsLocked();
  cv_.notify_all();
}

// Events reach cdeploy in an order that makes sense: nothing of a process
// before the spawn line that names it. A process's events (its own spawn
// lines included) wait in `early` until it is named; naming it releases them.
void Master::DeliverLocked(uint64_t id, const pb::ProcessEvent& event) {
  auto it = deployments_.find(id);
  absl::StatusOr<Pid> pid = FromProto(event.pid());
  if (it == deployments_.end() || !pid.ok()) return;
  Deployment& deployment = it->second;
  if (!deployment.announced.contains(*pid)) {
    deployment.early[*pid].push_back(event);  // its spawn line is not out yet
    return;
  }
  if (event.has_exit()) ExitedLocked(*pid, deployment, event.exit());
  deployment.outbox.emplace_back().mutable_event()->CopyFrom(event);
  if (event.has_spawn()) {
    absl::StatusOr<Pid> child = FromProto(event.spawn().child());
    if (child.ok()) NameLocked(id, *child);
    it = deployments_.find(id);  // replaying the child's events may have ended the deployment
    if (it == deployments_.end()) return;
  }
  if (event.has_exit() && deployment.live == 0 && !deployment.done) {
    deployment.done = true;
    deployment.outbox.emplace_back().set_exit_code(deployment.exit_code);
    if (deployment.detached) deployments_.erase(it);
  }
}

void Master::NameLocked(uint64_t id, const Pid& pid) {
  Deployment& deployment = deployments_[id];
  deployment.announced.insert(pid);
  auto early = deployment.early.find(pid);
  if (early != deployment.early.end()) {
    std::vector<pb::ProcessEvent> events = std::move(early->second);
    deployment.early.erase(early);
    for (const pb::ProcessEvent& event : events) DeliverLocked(id, event);
  }
}

void Master::ExitedLocked(const Pid& pid, Deployment& deployment, const pb::ExitEvent& exit) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) return;                       // reported already
  scheduler_.Release(it->second.allocation).IgnoreError();  // gone already if its node was removed
  processes_.erase(it);
  --deployment.live;
  int code = exit.status_case() == pb::ExitEvent::kSignal ? 128 + exit.signal() : exit.code();
  if (deployment.exit_code == 0 && code != 0) deployment.exit_code = code;
  CollectGrantsLocked();
}

void Master::AnnounceLocked(uint64_t id, const Pid& parent, const Pid& child) {
  if (parent.is_null()) {
    NameLocked(id, child);  // the root: no spawn line
  } else {
    // Through DeliverLocked: if the parent itself is not named yet (it spawned
    // before its own spawn line went out), this line waits behind it.
    pb::ProcessEvent spawn;
    *spawn.mutable_pid() = ToProto(parent);
    *spawn.mutable_spawn()->mutable_child() = ToProto(child);
    DeliverLocked(id, spawn);
  }
  cv_.notify_all();
}

void Master::CollectGrantsLocked() {
  for (scheduler::Grant& grant : scheduler_.TakeGrants()) grants_[grant.ticket] = std::move(grant);
  cv_.notify_all();
}

absl::StatusOr<scheduler::Allocation> Master::Place(const Resources& resources, bool wait, uint64_t deployment) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!wait) return scheduler_.TryPlace(resources);
  absl::StatusOr<scheduler::Allocation> now = scheduler_.TryPlace(resources);
  if (now.ok() || !absl::IsResourceExhausted(now.status())) return now;
  absl::StatusOr<scheduler::TicketId> ticket = scheduler_.Enqueue(resources);
  if (!ticket.ok()) return ticket.status();
  CollectGrantsLocked();
  while (true) {
    auto grant = grants_.find(*ticket);
    if (grant != grants_.end()) {
      absl::StatusOr<scheduler::Allocation> allocation = std::move(grant->second.allocation);
      grants_.erase(grant);
      return allocation;
    }
    auto d = deployments_.find(deployment);
    if (stopping_ || d == deployments_.end() || d->second.done || d->second.cancelled) {
      scheduler_.Cancel(*ticket).IgnoreError();
      CollectGrantsLocked();
      return absl::CancelledError("the deployment ended while the spawn waited for room");
    }
    cv_.wait(lock);
  }
}

absl::Status Master::EnsureBinary(const std::string& addr, const pb::BinaryId& binary) {
  std::shared_ptr<pb::Node::Stub> stub;
  std::mutex* upload_mu;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Node& node = nodes_[addr];
    if (node.binaries.contains(binary.sha256())) return absl::OkStatus();
    stub = node.stub;
    upload_mu = node.upload_mu.get();
  }
  std::lock_guard<std::mutex> upload_lock(*upload_mu);              // one upload of it per node at a time
  absl::StatusOr<std::string> path = cache_->VerifiedPath(binary);  // what cdeploy uploaded, unchanged
  if (!path.ok()) return path.status();
  absl::Status status = UploadIfMissing(*stub, binary, *path);
  if (status.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    nodes_[addr].binaries.insert(binary.sha256());
  }
  return status;
}

absl::StatusOr<Pid> Master::PlaceAndLaunch(uint64_t deployment, pb::LaunchRequest launch, bool wait,
                                           std::string* node_out) {
  absl::StatusOr<scheduler::Allocation> allocation = Place(FromProto(launch.resources()), wait, deployment);
  if (!allocation.ok()) return allocation.status();
  auto release = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    scheduler_.Release(allocation->id).IgnoreError();
    CollectGrantsLocked();
  };
  absl::Status uploaded = EnsureBinary(allocation->node, launch.binary());
  if (!uploaded.ok()) {
    release();
    return uploaded;
  }
  std::shared_ptr<pb::Node::Stub> stub;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stub = nodes_[allocation->node].stub;
  }
  launch.set_deployment(deployment);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  pb::LaunchReply reply;
  grpc::Status status = stub->Launch(&context, launch, &reply);
  absl::StatusOr<Pid> pid = status.ok() ? FromProto(reply.pid()) : absl::StatusOr<Pid>(FromGrpc(status));
  if (!pid.ok()) {
    release();
    return pid.status();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto d = deployments_.find(deployment);
    if (d != deployments_.end() && !d->second.cancelled) {
      processes_[*pid] = Process{deployment, allocation->node, allocation->id};
      // Counted from launch, not from its spawn line, so the deployment is not
      // over while a child's line waits behind its parent's.
      ++d->second.live;
      if (node_out != nullptr) *node_out = allocation->node;
      return pid;
    }
  }
  // The deployment was cancelled while this process started, after its kill
  // went out: stop the newcomer too.
  release();
  grpc::ClientContext kill_context;
  kill_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pb::KillRequest kill;
  kill.set_deployment(deployment);
  pb::Empty empty;
  stub->Kill(&kill_context, kill, &empty);
  return absl::CancelledError("the deployment ended while the process started");
}

grpc::Status Master::Spawn(const pb::MasterSpawnRequest& call, pb::SpawnReply* reply) {
  const pb::SpawnRequest& request = call.request();
  absl::StatusOr<Pid> parent = FromProto(request.parent());
  pb::LaunchRequest launch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = deployments_.find(call.deployment());
    if (it == deployments_.end() || it->second.done || it->second.cancelled || !parent.ok()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no such deployment");
    }
    *launch.mutable_binary() = it->second.binary;
    launch.set_secret(it->second.secret);
  }
  launch.mutable_argv()->CopyFrom(request.argv());
  launch.mutable_env()->CopyFrom(request.env());
  *launch.mutable_resources() = request.resources();
  *launch.mutable_parent() = request.parent();
  *launch.mutable_call() = request.call();
  absl::StatusOr<Pid> child = PlaceAndLaunch(call.deployment(), std::move(launch), request.wait(), nullptr);
  if (!child.ok()) return ToGrpc(child.status());
  {
    std::lock_guard<std::mutex> lock(mu_);
    AnnounceLocked(call.deployment(), *parent, *child);
  }
  *reply->mutable_child() = ToProto(*child);
  return grpc::Status::OK;
}

void Master::KillDeployment(uint64_t deployment) {
  std::vector<std::shared_ptr<pb::Node::Stub>> stubs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [addr, node] : nodes_) {
      if (node.up) stubs.push_back(node.stub);
    }
  }
  for (const auto& stub : stubs) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    pb::KillRequest request;
    request.set_deployment(deployment);
    pb::Empty empty;
    stub->Kill(&context, request, &empty);
  }
}

}  // namespace constellation::daemon
