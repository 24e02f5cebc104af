#include "daemon/master/grpc_node_client.h"

#include <chrono>

#include "daemon/grpc_util.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::FromProto;

namespace {

// Deadlines: a launch may wait for a large binary's page-in; a resources
// query runs the binary (bounded at 10 s on the node); the rest is quick.
constexpr auto kQuick = std::chrono::seconds(10);
constexpr auto kLaunch = std::chrono::seconds(30);
constexpr size_t kUploadChunk = 1 << 20;

void SetDeadline(grpc::ClientContext& context, std::chrono::seconds after) {
  context.set_deadline(std::chrono::system_clock::now() + after);
}

class GrpcAttachStream final : public AttachStream {
 public:
  GrpcAttachStream(pb::Node::Stub& stub, const pb::AttachRequest& request) : reader_(stub.Attach(&context_, request)) {}
  bool Read(pb::NodeEvent* event) override { return reader_->Read(event); }
  absl::Status Finish() override { return FromGrpc(reader_->Finish()); }
  void Cancel() override { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;  // before reader_: the call uses it
  std::unique_ptr<grpc::ClientReader<pb::NodeEvent>> reader_;
};

}  // namespace

GrpcNodeClient::GrpcNodeClient(std::string addr, std::shared_ptr<grpc::ChannelCredentials> credentials)
    : addr_(std::move(addr)), stub_(pb::Node::NewStub(NodeChannel(addr_, std::move(credentials)))) {}

absl::StatusOr<pb::HasBinaryReply> GrpcNodeClient::HasBinary(const pb::BinaryId& binary) {
  grpc::ClientContext context;
  SetDeadline(context, kQuick);
  pb::HasBinaryReply reply;
  grpc::Status status = stub_->HasBinary(&context, binary, &reply);
  if (!status.ok()) return FromGrpc(status);
  return reply;
}

absl::Status GrpcNodeClient::Upload(const pb::BinaryId& binary, ChunkSource& source) {
  grpc::ClientContext context;  // no deadline: a large binary on a slow link takes what it takes
  pb::UploadReply reply;
  std::unique_ptr<grpc::ClientWriter<pb::UploadChunk>> writer = stub_->Upload(&context, &reply);
  pb::UploadChunk chunk;
  *chunk.mutable_id() = binary;
  std::string buf(kUploadChunk, '\0');
  bool first = true;
  while (true) {
    absl::StatusOr<size_t> n = source.Read(buf.data(), buf.size());
    if (!n.ok()) {
      context.TryCancel();  // the node drops what it has (Node.Upload checks for cancellation)
      writer->Finish().ok();
      return n.status();
    }
    if (*n == 0 && !first) break;
    chunk.set_data(buf.data(), *n);
    if (!writer->Write(chunk)) break;  // the node gave up: Finish says why
    chunk.clear_id();
    first = false;
    if (*n == 0) break;
  }
  writer->WritesDone();
  return FromGrpc(writer->Finish());
}

absl::Status GrpcNodeClient::Adopt(const pb::BinaryId& binary, const std::string& path) {
  grpc::ClientContext context;
  SetDeadline(context, kLaunch);  // the node hashes the file
  pb::AdoptRequest request;
  *request.mutable_id() = binary;
  request.set_path(path);
  pb::UploadReply reply;
  return FromGrpc(stub_->Adopt(&context, request, &reply));
}

absl::StatusOr<Pid> GrpcNodeClient::Launch(const pb::LaunchRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context, kLaunch);
  pb::LaunchReply reply;
  grpc::Status status = stub_->Launch(&context, request, &reply);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(reply.pid());
}

absl::Status GrpcNodeClient::WriteStdin(const pb::StdinChunk& chunk) {
  grpc::ClientContext context;
  SetDeadline(context, kLaunch);
  pb::Empty empty;
  return FromGrpc(stub_->WriteStdin(&context, chunk, &empty));
}

absl::Status GrpcNodeClient::Kill(const pb::KillRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context, kQuick);
  pb::Empty empty;
  return FromGrpc(stub_->Kill(&context, request, &empty));
}

absl::StatusOr<Resources> GrpcNodeClient::QueryResources(const pb::ResourcesQuery& query) {
  grpc::ClientContext context;
  SetDeadline(context, kLaunch);
  pb::Resources reply;
  grpc::Status status = stub_->QueryResources(&context, query, &reply);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(reply);
}

absl::Status GrpcNodeClient::Ack(const pb::AckRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context, kQuick);
  pb::Empty empty;
  return FromGrpc(stub_->Ack(&context, request, &empty));
}

struct GrpcNodeClient::GoneCall {
  grpc::ClientContext context;
  pb::GoneBatch request;
  pb::Empty reply;
  std::function<void(absl::Status)> done;
};

void GrpcNodeClient::Gone(const pb::GoneBatch& batch, std::function<void(absl::Status)> done) {
  auto call = std::make_shared<GoneCall>();
  call->request = batch;
  call->done = std::move(done);
  SetDeadline(call->context, kQuick);
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.insert(call);
  }
  // Unlocked: the callback may run before Gone() returns. It holds the call.
  GoneCall* raw = call.get();
  stub_->async()->Gone(&raw->context, &raw->request, &raw->reply, [this, call](grpc::Status status) mutable {
    std::function<void(absl::Status)> done;
    {
      // Locked: Gone() filled the call in before it took the lock (gRPC's hand-over is invisible to TSan).
      std::lock_guard<std::mutex> lock(mu_);
      done = std::move(call->done);
    }
    done(FromGrpc(status));
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(call);
    call.reset();      // the context goes here, with the stub (and its channel) still held: see node_spawns.h
    cv_.notify_all();  // under the lock: once the destructor sees no calls, this no longer touches the client
  });
}

GrpcNodeClient::~GrpcNodeClient() {
  std::set<std::shared_ptr<GoneCall>> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls = calls_;
  }
  for (const std::shared_ptr<GoneCall>& call : calls) call->context.TryCancel();
  calls.clear();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return calls_.empty(); });
}

std::unique_ptr<AttachStream> GrpcNodeClient::Attach(const pb::AttachRequest& request) {
  return std::make_unique<GrpcAttachStream>(*stub_, request);
}

}  // namespace constellation::daemon::master
