#include "daemon/node_watches.h"

#include "daemon/grpc_util.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::ToProto;

WatchRelay::WatchRelay(std::shared_ptr<grpc::ChannelCredentials> credentials, Answer answer)
    : credentials_(std::move(credentials)), answer_(std::move(answer)) {}

WatchRelay::~WatchRelay() { Shutdown(); }

void WatchRelay::Shutdown() {
  std::set<std::shared_ptr<Call>> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    calls = calls_;
  }
  // Unlocked: a cancelled call's callback may run inside TryCancel and take the lock.
  for (const std::shared_ptr<Call>& call : calls) call->context.TryCancel();
  calls.clear();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return calls_.empty(); });
  master_.reset();
  stubs_.clear();
}

void WatchRelay::SetMaster(const std::string& addr) {
  std::set<std::shared_ptr<Call>> stale;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_ || (master_ != nullptr && addr == addr_)) return;
    addr_ = addr;
    master_ = pb::Master::NewStub(NodeChannel(addr, credentials_));
    stubs_.push_back(master_);
    stale = calls_;  // they wait for an address no master answers at any more
  }
  for (const std::shared_ptr<Call>& call : stale) call->context.TryCancel();
}

void WatchRelay::Ask(uint64_t deployment, const std::vector<Pid>& pids) {
  if (pids.empty()) return;
  auto call = std::make_shared<Call>();
  call->request.set_deployment(deployment);
  for (const Pid& pid : pids) *call->request.add_pids() = ToProto(pid);
  call->context.set_wait_for_ready(true);  // a master that restarts: it is asked when it is back
  std::shared_ptr<pb::Master::Stub> master;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_ || master_ == nullptr) return;  // asked again when a master attaches
    master = master_;
    calls_.insert(call);
  }
  // Unlocked: the callback may run before Watch() returns. It holds the call.
  Call* raw = call.get();
  master->async()->Watch(
      &raw->context, &raw->request, &raw->answer,
      [this, call = std::move(call)](grpc::Status status) mutable { Done(std::move(call), status); });
}

void WatchRelay::Done(std::shared_ptr<Call> call, const grpc::Status& status) {
  pb::GoneBatch answer;
  {
    // Locked: Ask filled the call in before it took the lock to insert it
    // (gRPC's hand-over between the threads is invisible to TSan).
    std::lock_guard<std::mutex> lock(mu_);
    if (status.ok()) answer = std::move(call->answer);
    answer.set_deployment(call->request.deployment());  // what was asked, whatever the answer says
  }
  if (status.ok() && answer.gone_size() > 0) answer_(answer);
  std::lock_guard<std::mutex> lock(mu_);
  calls_.erase(call);
  call.reset();      // the context goes here, not when gRPC drops the callback: see stubs_
  cv_.notify_all();  // under the lock: once Shutdown sees no calls, this callback no longer touches the relay
}

size_t WatchRelay::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_.size();
}

}  // namespace constellation::daemon
