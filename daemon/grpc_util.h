#pragma once

// Small gRPC helpers shared by the daemon and cdeploy.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

// How long a peer's connection may leave a keepalive ping unanswered before
// it is declared broken (default 10 s; pings go every second). Set once, by
// main(), before any channel or server is made. Short enough that a vanished
// peer is noticed in seconds, long enough that a stalled one (a loaded
// machine, a sanitizer build) is not taken for a lost one.
void SetPeerTimeout(absl::Duration timeout);
absl::Duration PeerTimeout();

// A channel to a node daemon (or from a node to the master) with keepalive
// pings every second (see SetPeerTimeout), so a peer that vanishes without
// closing its connections is noticed within seconds. `credentials`: TLS with this daemon's bundle, or
// insecure (daemon/security/credentials.h).
std::shared_ptr<grpc::Channel> NodeChannel(const std::string& addr,
                                           std::shared_ptr<grpc::ChannelCredentials> credentials);

// Server options matching NodeChannel's pings (and large messages).
void ConfigureServer(grpc::ServerBuilder& builder);

// Uploads the file at `path` (whose id is `binary`) to the node unless the
// node has it already. Chunks of 1 MiB.
absl::Status UploadIfMissing(pb::Node::Stub& node, const pb::BinaryId& binary, const std::string& path);

}  // namespace constellation::daemon
