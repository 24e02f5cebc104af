#include "daemon/node_spawns.h"

#include "absl/status/status.h"
#include "daemon/grpc_util.h"

namespace constellation::daemon {

SpawnRelay::SpawnRelay(std::shared_ptr<grpc::ChannelCredentials> credentials) : credentials_(std::move(credentials)) {}

SpawnRelay::~SpawnRelay() { Shutdown(); }

void SpawnRelay::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
  }
  CancelAll();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return calls_.empty(); });
  master_.reset();
  stubs_.clear();
}

void SpawnRelay::SetMaster(const std::string& addr) {
  std::set<std::shared_ptr<Call>> stale;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_ || (master_ != nullptr && addr == addr_)) return;
    addr_ = addr;
    master_ = pb::Master::NewStub(NodeChannel(addr, credentials_));
    stubs_.push_back(master_);
    stale = calls_;  // they wait for an address no master answers at any more
  }
  Cancel(stale);
}

void SpawnRelay::Relay(uint64_t deployment, const pb::SpawnRequest& request, NodeAgent::Reply reply) {
  auto call = std::make_shared<Call>();
  call->request.set_deployment(deployment);
  *call->request.mutable_request() = request;
  call->reply = std::move(reply);
  std::shared_ptr<pb::Master::Stub> master;
  const char* refused = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) {
      refused = "this node is shutting down";
    } else if (master_ == nullptr) {
      refused = "this node has no master";
    } else {
      master = master_;
      calls_.insert(call);
    }
  }
  if (refused != nullptr) {
    pb::SpawnReply failed;
    failed.set_id(request.id());
    failed.set_code(static_cast<int>(absl::StatusCode::kUnavailable));
    failed.set_message(refused);
    call->reply(failed);
    return;
  }
  // A master that is restarting: wait for it (NodeService cancels past the grace).
  call->context.set_wait_for_ready(true);
  // Unlocked: the callback may run before Spawn() returns. It holds the call.
  Call* raw = call.get();
  master->async()->Spawn(
      &raw->context, &raw->request, &raw->answer,
      [this, call = std::move(call)](grpc::Status status) mutable { Done(std::move(call), status); });
}

void SpawnRelay::Done(std::shared_ptr<Call> call, const grpc::Status& status) {
  if (!status.ok()) {
    call->answer.Clear();
    call->answer.set_code(status.error_code());
    call->answer.set_message(status.error_message());
  }
  call->answer.set_id(call->request.request().id());
  call->reply(call->answer);
  std::lock_guard<std::mutex> lock(mu_);
  calls_.erase(call);
  // The context goes here (or in CancelAll's thread), not when gRPC drops the callback: see stubs_.
  call.reset();
  // Under the lock: once the destructor sees no calls, this callback no longer touches the relay.
  cv_.notify_all();
}

void SpawnRelay::Cancel(const std::set<std::shared_ptr<Call>>& calls) {
  // Unlocked: a cancelled call's callback may run inside TryCancel and take the lock.
  for (const std::shared_ptr<Call>& call : calls) call->context.TryCancel();
}

void SpawnRelay::CancelAll() {
  std::set<std::shared_ptr<Call>> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls = calls_;
  }
  Cancel(calls);
}

size_t SpawnRelay::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_.size();
}

}  // namespace constellation::daemon
