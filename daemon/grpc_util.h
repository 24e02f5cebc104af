#pragma once

// Small gRPC helpers shared by the daemon and cdeploy.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

// A channel to a node daemon (or from a node to the master) with keepalive
// pings every second, so a peer that vanishes without closing its connections
// is noticed within seconds. `credentials`: TLS with this daemon's bundle, or
// insecure (daemon/security/credentials.h).
std::shared_ptr<grpc::Channel> NodeChannel(const std::string& addr,
                                           std::shared_ptr<grpc::ChannelCredentials> credentials);

// Server options matching NodeChannel's pings (and large messages).
void ConfigureServer(grpc::ServerBuilder& builder);

// Uploads the file at `path` (whose id is `binary`) to the node unless the
// node has it already. Chunks of 1 MiB.
absl::Status UploadIfMissing(pb::Node::Stub& node, const pb::BinaryId& binary, const std::string& path);

}  // namespace constellation::daemon
