#include "daemon/grpc_util.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace constellation::daemon {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

namespace {
absl::Duration g_peer_timeout = absl::Seconds(10);  // set by main() before any thread
}  // namespace

void SetPeerTimeout(absl::Duration timeout) { g_peer_timeout = timeout; }

absl::Duration PeerTimeout() { return g_peer_timeout; }

std::shared_ptr<grpc::Channel> NodeChannel(const std::string& addr,
                                           std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(absl::ToInt64Milliseconds(g_peer_timeout)));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Reconnect quickly once a lost node comes back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(addr, std::move(credentials), args);
}

void ConfigureServer(grpc::ServerBuilder& builder) {
  // Ping clients too, so a node notices a master that vanished without
  // closing its connection (and kills what it started) within seconds.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(g_peer_timeout)));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.SetMaxReceiveMessageSize(64 << 20);
}

absl::Status UploadIfMissing(pb::Node::Stub& node, const pb::BinaryId& binary, const std::string& path) {
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    pb::HasBinaryReply has;
    grpc::Status status = node.HasBinary(&context, binary, &has);
    if (!status.ok()) return FromGrpc(status);
    if (has.present()) return absl::OkStatus();
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  grpc::ClientContext context;
  pb::UploadReply reply;
  std::unique_ptr<grpc::ClientWriter<pb::UploadChunk>> writer = node.Upload(&context, &reply);
  pb::UploadChunk chunk;
  *chunk.mutable_id() = binary;
  std::string buf(1 << 20, '\0');
  ssize_t n;
  bool first = true;
  while ((n = read(fd, buf.data(), buf.size())) > 0 || first) {
    chunk.set_data(buf.data(), n > 0 ? n : 0);
    if (!writer->Write(chunk)) break;
    chunk.clear_id();
    first = false;
    if (n <= 0) break;
  }
  close(fd);
  writer->WritesDone();
  return FromGrpc(writer->Finish());
}

}  // namespace constellation::daemon
