#include "daemon/master_calls.h"

#include "absl/status/status.h"
#include "daemon/grpc_util.h"

namespace constellation::daemon {

MasterCalls::MasterCalls(std::shared_ptr<grpc::ChannelCredentials> credentials)
    : credentials_(std::move(credentials)) {}

MasterCalls::~MasterCalls() { Shutdown(); }

void MasterCalls::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
  }
  CancelAll();  // its copy of the calls is gone when it returns: Finish drops the last references
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return calls_.empty(); });
  master_.reset();
  stubs_.clear();
}

void MasterCalls::SetMaster(const std::string& addr) {
  std::set<Context> stale;
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

absl::StatusOr<MasterCalls::Stub> MasterCalls::StartCall(Context call) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return absl::UnavailableError("this node is shutting down");
  if (master_ == nullptr) return absl::UnavailableError("this node has no master");
  calls_.insert(std::move(call));
  return master_;
}

void MasterCalls::SeeStarted() const { std::lock_guard<std::mutex> lock(mu_); }

void MasterCalls::FinishCall(Context call) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.erase(call);
  // The context goes here (or in CancelAll's thread), not when gRPC drops the callback: see stubs_.
  call.reset();
  // Under the lock: once Shutdown sees no calls, this callback no longer touches the relay.
  cv_.notify_all();
}

void MasterCalls::Cancel(const std::set<Context>& calls) {
  // Unlocked: a cancelled call's callback may run inside TryCancel and take the lock.
  for (const Context& call : calls) call->TryCancel();
}

void MasterCalls::CancelAll() {
  std::set<Context> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls = calls_;
  }
  Cancel(calls);
}

size_t MasterCalls::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_.size();
}

}  // namespace constellation::daemon
