#include "lib/net/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace constellation::net::testing {

Listener Listen(uint32_t nonce) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("test listen");
    std::abort();
  }
  return Listener{fd, Pid::FromIpv4(0x7f000001, ntohs(addr.sin_port), nonce)};
}

DataPlane::Options TestOptions() {
  DataPlane::Options options;
  options.limits.max_bytes = 64 << 10;
  options.limits.max_frames = 64;
  options.idle_timeout = absl::Seconds(60);  // tests that want teardown set it
  options.handshake_timeout = absl::Seconds(20);
  options.exit_flush_timeout = absl::Seconds(20);
  return options;
}

std::unique_ptr<DataPlane> MakePlane(uint32_t nonce, DataPlane::Options options) {
  Listener l = Listen(nonce);
  return std::make_unique<DataPlane>(l.fd, l.pid, options);
}

int RawConnect(const Pid& pid) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(pid.port());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

}  // namespace constellation::net::testing
