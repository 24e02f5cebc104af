#pragma once

// GrpcNodeClient: NodeClient over a gRPC channel (keepalive pings, so a node
// that vanishes is noticed within seconds; daemon/grpc_util.h).

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "daemon/master/node_client.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon::master {

class GrpcNodeClient final : public NodeClient {
 public:
  GrpcNodeClient(std::string addr, std::shared_ptr<grpc::ChannelCredentials> credentials);

  const std::string& addr() const override { return addr_; }
  absl::StatusOr<pb::HasBinaryReply> HasBinary(const pb::BinaryId& binary) override;
  absl::Status Upload(const pb::BinaryId& binary, ChunkSource& source) override;
  absl::Status Adopt(const pb::BinaryId& binary, const std::string& path) override;
  absl::StatusOr<Pid> Launch(const pb::LaunchRequest& request) override;
  absl::Status WriteStdin(const pb::StdinChunk& chunk) override;
  absl::Status Kill(const pb::KillRequest& request) override;
  absl::StatusOr<Resources> QueryResources(const pb::ResourcesQuery& query) override;
  absl::Status Ack(const pb::AckRequest& request) override;
  std::unique_ptr<AttachStream> Attach(const pb::AttachRequest& request) override;
  // gRPC's callback API: no thread waits. `done` runs on gRPC's threads.
  void Gone(const pb::GoneBatch& batch, std::function<void(absl::Status)> done) override;
  ~GrpcNodeClient() override;  // cancels the Gone calls in flight and waits for their `done`

 private:
  struct GoneCall;

  const std::string addr_;
  const std::unique_ptr<pb::Node::Stub> stub_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::shared_ptr<GoneCall>> calls_;  // guarded by mu_: Gone calls in flight
};

}  // namespace constellation::daemon::master
