#include "daemon/node_watches.h"

#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::ToProto;

WatchRelay::WatchRelay(std::shared_ptr<grpc::ChannelCredentials> credentials, Answer answer)
    : answer_(std::move(answer)), master_(std::move(credentials)) {}

WatchRelay::~WatchRelay() { Shutdown(); }

void WatchRelay::Shutdown() { master_.Shutdown(); }

void WatchRelay::SetMaster(const std::string& addr) { master_.SetMaster(addr); }

void WatchRelay::Ask(uint64_t deployment, const std::vector<Pid>& pids) {
  if (pids.empty()) return;
  auto call = std::make_shared<Call>();
  call->request.set_deployment(deployment);
  for (const Pid& pid : pids) *call->request.add_pids() = ToProto(pid);
  call->context.set_wait_for_ready(true);  // a master that restarts: it is asked when it is back
  absl::StatusOr<MasterCalls::Stub> master = master_.Start(call);
  if (!master.ok()) return;  // asked again when a master attaches
  // The callback may run before Watch() returns. It holds the call.
  Call* raw = call.get();
  (*master)->async()->Watch(
      &raw->context, &raw->request, &raw->answer,
      [this, call = std::move(call)](grpc::Status status) mutable { Done(std::move(call), status); });
}

void WatchRelay::Done(std::shared_ptr<Call> call, const grpc::Status& status) {
  master_.SeeStarted();  // Ask filled the call in
  pb::GoneBatch answer;
  if (status.ok()) answer = std::move(call->answer);
  answer.set_deployment(call->request.deployment());  // what was asked, whatever the answer says
  if (status.ok() && answer.gone_size() > 0) answer_(answer);
  master_.Finish(std::move(call));
}

size_t WatchRelay::in_flight() const { return master_.in_flight(); }

}  // namespace constellation::daemon
