// The floor: a plain blocking TCP socket pair on 127.0.0.1 (TCP_NODELAY), one
// send() per message and read() until the message is complete. No framing:
// both sides know each message's size. See common.h for the protocol.
//
// Start-up: A listens, posix_spawns this binary, which connects and writes 8
// bytes; the time runs from posix_spawn to A having read them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_support.h"
#include "bench/compare/common.h"

namespace {

using compare::Args;
using compare::Die;
using compare::DieIf;

absl::Status Errno(const std::string& what) { return absl::ErrnoToStatus(errno, what); }

void SetOptions(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{20, 0};  // no wait in a measurement takes this long: fail rather than hang
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Returns the listening socket; *port gets its port.
absl::StatusOr<int> Listen(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Errno("listen");
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

absl::StatusOr<int> Accept(int listen_fd) {
  pollfd p{listen_fd, POLLIN, 0};
  if (poll(&p, 1, 20000) != 1) return absl::DeadlineExceededError("nobody connected within 20 s");
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return Errno("accept");
  SetOptions(fd);
  return fd;
}

absl::StatusOr<int> Connect(const std::string& port_text) {
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port)) return absl::InvalidArgumentError("bad port " + port_text);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0) return Errno("socket");
  SetOptions(fd);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return Errno("connect");
  return fd;
}

absl::Status WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Errno("send");
    p += w;
    n -= w;
  }
  return absl::OkStatus();
}

absl::Status ReadAll(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return absl::UnavailableError("EOF");
    if (r < 0) return Errno("read");
    p += r;
    n -= r;
  }
  return absl::OkStatus();
}

class RawEndpoint : public compare::Endpoint {
 public:
  explicit RawEndpoint(int fd) : fd_(fd) {}
  ~RawEndpoint() override { close(fd_); }
  char* Prepare(size_t size) override {
    if (out_.size() < size) out_.resize(size);
    return out_.data();
  }
  absl::Status Send(size_t size) override { return WriteAll(fd_, out_.data(), size); }
  absl::StatusOr<std::string_view> Recv(size_t expected) override {
    if (in_.size() < expected) in_.resize(expected);
    absl::Status s = ReadAll(fd_, in_.data(), expected);
    if (!s.ok()) return s;
    return std::string_view(in_.data(), expected);
  }

 private:
  int fd_;
  std::string out_, in_;
};

int RunA(const Args& args) {
  int port = 0;
  absl::StatusOr<int> listen_fd = Listen(&port);
  DieIf(listen_fd.status(), "A");
  std::string peer = "--peer=" + std::to_string(port);
  if (args.test == compare::Test::kStart) {
    compare::RunStarts(args, [&]() -> absl::StatusOr<int64_t> {
      int64_t t0 = bench::NowNs();
      absl::StatusOr<pid_t> child = compare::SpawnSelf(args.argv, {"--role=start", peer});
      if (!child.ok()) return child.status();
      absl::StatusOr<int> fd = Accept(*listen_fd);
      if (!fd.ok()) return fd.status();
      char word[8];
      absl::Status read = ReadAll(*fd, word, sizeof(word));
      int64_t t1 = bench::NowNs();
      close(*fd);
      if (!read.ok()) return read;
      absl::Status exited = compare::WaitChild(*child);
      if (!exited.ok()) return exited;
      return t1 - t0;
    });
    return 0;
  }
  absl::StatusOr<pid_t> child = compare::SpawnSelf(args.argv, {"--role=b", peer});
  DieIf(child.status(), "A");
  absl::StatusOr<int> fd = Accept(*listen_fd);
  DieIf(fd.status(), "A");
  close(*listen_fd);
  {
    RawEndpoint endpoint(*fd);
    compare::RunA(endpoint, args);
  }
  DieIf(compare::WaitChild(*child), "A");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = compare::Setup(argc, argv);
  if (args.role == "a") return RunA(args);
  absl::StatusOr<int> fd = Connect(args.peer);
  DieIf(fd.status(), args.role);
  if (args.role == "start") {
    char word[8] = {};
    DieIf(WriteAll(*fd, word, sizeof(word)), "start");
    return 0;
  }
  RawEndpoint endpoint(*fd);
  compare::RunB(endpoint, args);
  return 0;
}
