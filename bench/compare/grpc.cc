// gRPC (Debian's libgrpc++, synchronous API): one bidirectional stream
// (compare.proto's Exchange) over an insecure HTTP/2 connection on 127.0.0.1,
// one Chunk per message. A is the server and measures inside its stream
// handler (a thread of gRPC's pool); B is the client. gRPC moves bytes on its
// own threads (completion queues, an epoll-based poller): no busy polling.
// See common.h for the protocol.
//
// Start-up: A serves; it posix_spawns this binary, which opens a channel and
// the stream and writes one 8-byte Chunk; the time runs from posix_spawn to
// A's handler having read it.
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "bench/bench_support.h"
#include "bench/compare/common.h"
#include "bench/compare/compare.grpc.pb.h"

namespace {

using compare::Args;
using compare::Chunk;
using compare::Die;
using compare::DieIf;

constexpr int kMaxMessage = 64 << 20;
constexpr auto kStepTimeout = std::chrono::seconds(20);  // no single wait takes this long: fail rather than hang
constexpr auto kRunTimeout = std::chrono::seconds(300);  // nor a whole measurement

template <class Stream>
class GrpcEndpoint : public compare::Endpoint {
 public:
  explicit GrpcEndpoint(Stream* stream) : stream_(stream) {}
  char* Prepare(size_t size) override {
    out_.mutable_data()->resize(size);
    return out_.mutable_data()->data();
  }
  absl::Status Send(size_t) override {
    if (!stream_->Write(out_)) return absl::UnavailableError("the stream broke");
    return absl::OkStatus();
  }
  absl::StatusOr<std::string_view> Recv(size_t) override {
    if (!stream_->Read(&in_)) return absl::UnavailableError("the stream ended");
    return std::string_view(in_.data());
  }

 private:
  Stream* stream_;
  Chunk out_, in_;
};

// A's service: runs the measurement in the stream's handler, or (start-up
// test) notes when the first Chunk of each new stream arrives.
class Service final : public compare::Bench::Service {
 public:
  explicit Service(const Args& args) : args_(args) {}

  grpc::Status Exchange(grpc::ServerContext*, grpc::ServerReaderWriter<Chunk, Chunk>* stream) override {
    if (args_.test == compare::Test::kStart) {
      Chunk chunk;
      if (stream->Read(&chunk)) Signal(bench::NowNs());
      while (stream->Read(&chunk)) {
      }
    } else {
      GrpcEndpoint endpoint(stream);
      compare::RunA(endpoint, args_);
      Signal(bench::NowNs());
    }
    return grpc::Status::OK;
  }

  // The time of the next signal (the first Chunk, or the end of the measurement).
  absl::StatusOr<int64_t> Await(std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return signalled_ != 0; })) {
      return absl::DeadlineExceededError("timed out");
    }
    int64_t t = signalled_;
    signalled_ = 0;
    return t;
  }

 private:
  void Signal(int64_t t) {
    std::lock_guard lock(mu_);
    signalled_ = t;
    cv_.notify_all();
  }

  const Args& args_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t signalled_ = 0;
};

int RunA(const Args& args) {
  Service service(args);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessage);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) Die("cannot start the gRPC server");
  std::string peer = "--peer=" + std::to_string(port);
  if (args.test == compare::Test::kStart) {
    compare::RunStarts(args, [&]() -> absl::StatusOr<int64_t> {
      int64_t t0 = bench::NowNs();
      absl::StatusOr<pid_t> child = compare::SpawnSelf(args.argv, {"--role=start", peer});
      if (!child.ok()) return child.status();
      absl::StatusOr<int64_t> t1 = service.Await(kStepTimeout);
      if (!t1.ok()) return t1.status();
      absl::Status exited = compare::WaitChild(*child);
      if (!exited.ok()) return exited;
      return *t1 - t0;
    });
  } else {
    absl::StatusOr<pid_t> child = compare::SpawnSelf(args.argv, {"--role=b", peer});
    DieIf(child.status(), "A");
    DieIf(service.Await(kRunTimeout).status(), "A");
    DieIf(compare::WaitChild(*child), "A");
  }
  server->Shutdown();
  return 0;
}

int RunB(const Args& args) {
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(kMaxMessage);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel("ipv4:127.0.0.1:" + args.peer, grpc::InsecureChannelCredentials(), channel_args);
  std::unique_ptr<compare::Bench::Stub> stub = compare::Bench::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  std::unique_ptr<grpc::ClientReaderWriter<Chunk, Chunk>> stream = stub->Exchange(&context);
  if (args.role == "start") {
    Chunk chunk;
    chunk.mutable_data()->assign(8, '\0');
    if (!stream->Write(chunk)) Die("start: the stream broke");
  } else {
    GrpcEndpoint endpoint(stream.get());
    compare::RunB(endpoint, args);
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  if (!status.ok()) Die("B: the stream ended with " + status.error_message());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = compare::Setup(argc, argv);  // pins before gRPC starts its threads: they inherit it
  return args.role == "a" ? RunA(args) : RunB(args);
}
