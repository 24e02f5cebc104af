#pragma once

// GrpcNodeClient: NodeClient over a gRPC channel (keepalive pings, so a node
// that vanishes is noticed within seconds; daemon/grpc_util.h).

#include <memory>
#include <string>

#include "daemon/master/node_client.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon::master {

class GrpcNodeClient final : public NodeClient {
 public:
  GrpcNodeClient(std::string addr, std::shared_ptr<grpc::ChannelCredentials> credentials);

  const std::string& addr() const override { return addr_; }
  absl::StatusOr<bool> HasBinary(const pb::BinaryId& binary) override;
  absl::Status Upload(const pb::BinaryId& binary, const std::string& path) override;
  absl::StatusOr<Pid> Launch(const pb::LaunchRequest& request) override;
  absl::Status WriteStdin(const pb::StdinChunk& chunk) override;
  absl::Status Kill(const pb::KillRequest& request) override;
  absl::StatusOr<Resources> QueryResources(const pb::ResourcesQuery& query) override;
  absl::Status Ack(const pb::AckRequest& request) override;
  std::unique_ptr<AttachStream> Attach(const pb::AttachRequest& request) override;

 private:
  const std::string addr_;
  const std::unique_ptr<pb::Node::Stub> stub_;
};

}  // namespace constellation::daemon::master
