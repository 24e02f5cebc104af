// ZeroMQ (libzmq 4.3 through cppzmq): a PAIR socket pair over TCP on
// 127.0.0.1, one zmq message per message, the usual copying send (the library
// copies the bytes into its message) and recv into a zmq::message_t. Each
// process has ZeroMQ's one I/O thread (the default context), which does the
// socket I/O: a message crosses user thread -> I/O thread -> kernel -> I/O
// thread -> user thread. No busy polling. See common.h for the protocol.
//
// Start-up: A binds a ROUTER socket and posix_spawns this binary, which
// connects a DEALER and sends 8 bytes; the time runs from posix_spawn to A
// having received them.
#include <string>
#include <zmq.hpp>

#include "bench/bench_support.h"
#include "bench/compare/common.h"

namespace {

using compare::Args;
using compare::Die;
using compare::DieIf;

constexpr int kTimeoutMs = 20000;  // no wait in a measurement takes this long: fail rather than hang

void SetOptions(zmq::socket_t& socket) {
  socket.set(zmq::sockopt::rcvtimeo, kTimeoutMs);
  socket.set(zmq::sockopt::sndtimeo, kTimeoutMs);
  socket.set(zmq::sockopt::linger, kTimeoutMs);  // delivery of the last message at close is bounded too
}

class ZmqEndpoint : public compare::Endpoint {
 public:
  explicit ZmqEndpoint(zmq::socket_t& socket) : socket_(socket) {}
  char* Prepare(size_t size) override {
    if (out_.size() < size) out_.resize(size);
    return out_.data();
  }
  absl::Status Send(size_t size) override {
    if (!socket_.send(zmq::const_buffer(out_.data(), size), zmq::send_flags::none)) {
      return absl::DeadlineExceededError("zmq send timed out");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string_view> Recv(size_t expected) override {
    if (!socket_.recv(in_, zmq::recv_flags::none)) return absl::DeadlineExceededError("zmq recv timed out");
    return std::string_view(static_cast<const char*>(in_.data()), in_.size());
  }

 private:
  zmq::socket_t& socket_;
  std::string out_;
  zmq::message_t in_;
};

int RunStarts(const Args& args) {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  SetOptions(router);
  router.bind("tcp://127.0.0.1:*");
  std::string peer = "--peer=" + router.get(zmq::sockopt::last_endpoint);
  compare::RunStarts(args, [&]() -> absl::StatusOr<int64_t> {
    int64_t t0 = bench::NowNs();
    absl::StatusOr<pid_t> child = compare::SpawnSelf(args.argv, {"--role=start", peer});
    if (!child.ok()) return child.status();
    zmq::message_t identity, data;
    if (!router.recv(identity) || !router.recv(data)) return absl::DeadlineExceededError("no first message");
    int64_t t1 = bench::NowNs();
    absl::Status exited = compare::WaitChild(*child);
    if (!exited.ok()) return exited;
    return t1 - t0;
  });
  return 0;
}

int RunA(const Args& args) {
  if (args.test == compare::Test::kStart) return RunStarts(args);
  absl::StatusOr<pid_t> child;
  {
    zmq::context_t context;
    zmq::socket_t socket(context, zmq::socket_type::pair);
    SetOptions(socket);
    socket.bind("tcp://127.0.0.1:*");
    child = compare::SpawnSelf(args.argv, {"--role=b", "--peer=" + socket.get(zmq::sockopt::last_endpoint)});
    DieIf(child.status(), "A");
    ZmqEndpoint endpoint(socket);
    compare::RunA(endpoint, args);
  }
  DieIf(compare::WaitChild(*child), "A");
  return 0;
}

int RunB(const Args& args) {
  zmq::context_t context;
  if (args.role == "start") {
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    SetOptions(dealer);
    dealer.connect(args.peer);
    char word[8] = {};
    if (!dealer.send(zmq::const_buffer(word, sizeof(word)), zmq::send_flags::none)) Die("start: send timed out");
    return 0;  // closing the socket and the context delivers the message (linger)
  }
  zmq::socket_t socket(context, zmq::socket_type::pair);
  SetOptions(socket);
  socket.connect(args.peer);
  ZmqEndpoint endpoint(socket);
  compare::RunB(endpoint, args);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = compare::Setup(argc, argv);
  try {
    return args.role == "a" ? RunA(args) : RunB(args);
  } catch (const zmq::error_t& e) {  // cppzmq reports errors by exception
    Die(std::string("zmq: ") + e.what());
  }
}
