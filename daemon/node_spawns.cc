#include "daemon/node_spawns.h"

#include "absl/status/status.h"

namespace constellation::daemon {

SpawnRelay::SpawnRelay(std::shared_ptr<grpc::ChannelCredentials> credentials) : master_(std::move(credentials)) {}

SpawnRelay::~SpawnRelay() { Shutdown(); }

void SpawnRelay::Shutdown() { master_.Shutdown(); }

void SpawnRelay::SetMaster(const std::string& addr) { master_.SetMaster(addr); }

void SpawnRelay::Relay(uint64_t deployment, const pb::SpawnRequest& request, NodeAgent::Reply reply) {
  auto call = std::make_shared<Call>();
  call->request.set_deployment(deployment);
  *call->request.mutable_request() = request;
  call->reply = std::move(reply);
  // A master that is restarting: wait for it (NodeService cancels past the grace).
  call->context.set_wait_for_ready(true);
  absl::StatusOr<MasterCalls::Stub> master = master_.Start(call);
  if (!master.ok()) {
    pb::SpawnReply failed;
    failed.set_id(request.id());
    failed.set_code(static_cast<int>(master.status().code()));
    failed.set_message(std::string(master.status().message()));
    call->reply(failed);
    return;
  }
  // The callback may run before Spawn() returns. It holds the call.
  Call* raw = call.get();
  (*master)->async()->Spawn(
      &raw->context, &raw->request, &raw->answer,
      [this, call = std::move(call)](grpc::Status status) mutable { Done(std::move(call), status); });
}

void SpawnRelay::Done(std::shared_ptr<Call> call, const grpc::Status& status) {
  master_.SeeStarted();  // Relay filled the call in
  pb::SpawnReply answer;
  if (status.ok()) answer = call->answer;
  answer.set_id(call->request.request().id());
  if (!status.ok()) {
    answer.set_code(status.error_code());
    answer.set_message(status.error_message());
  }
  call->reply(answer);
  master_.Finish(std::move(call));
}

void SpawnRelay::CancelAll() { master_.CancelAll(); }

size_t SpawnRelay::in_flight() const { return master_.in_flight(); }

}  // namespace constellation::daemon
