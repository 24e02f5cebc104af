#include "lib/process/local_socket.h"

#include <errno.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace constellation {
namespace {

absl::StatusOr<sockaddr_un> AbstractAddress(absl::string_view name, socklen_t* len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (name.size() + 1 > sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket name too long: ", name));
  }
  addr.sun_path[0] = '\0';  // abstract namespace: nothing on disk to clean up
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return addr;
}

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

std::string NewBridgeName() {
  uint64_t random = 0;
  if (getrandom(&random, sizeof(random), 0) != sizeof(random)) random = static_cast<uint64_t>(getpid()) << 20;
  return absl::StrFormat("constellation-%d-%016x", getpid(), random);
}

absl::StatusOr<int> ListenLocal(absl::string_view name) {
  socklen_t len = 0;
  absl::StatusOr<sockaddr_un> addr = AbstractAddress(name, &len);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket");
  if (bind(fd, reinterpret_cast<sockaddr*>(&*addr), len) != 0 || listen(fd, SOMAXCONN) != 0) {
    absl::Status status = Errno(absl::StrCat("listen on @", name));
    close(fd);
    return status;
  }
  return fd;
}

absl::StatusOr<int> ConnectLocal(absl::string_view name) {
  socklen_t len = 0;
  absl::StatusOr<sockaddr_un> addr = AbstractAddress(name, &len);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&*addr), len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    absl::Status status = Errno(absl::StrCat("connect to the bridge @", name));
    close(fd);
    return status;
  }
  return fd;
}

absl::Status SendLocal(int fd, const pb::LocalMessage& message) {
  std::string bytes = message.SerializeAsString();
  if (bytes.size() > kMaxPacket) return absl::InternalError("local message too large");
  ssize_t n;
  do {
    n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("send to the bridge");
  return absl::OkStatus();
}

absl::StatusOr<bool> ReceiveLocal(int fd, pb::LocalMessage* message, bool dont_wait) {
  char buf[kMaxPacket];
  ssize_t n;
  do {
    n = recv(fd, buf, sizeof(buf), MSG_TRUNC | (dont_wait ? MSG_DONTWAIT : 0));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::UnavailableError("no packet");
    if (errno == ECONNRESET) return false;
    return Errno("recv");
  }
  if (n == 0) return false;
  if (static_cast<size_t>(n) > sizeof(buf)) return absl::DataLossError(absl::StrCat("oversized packet: ", n));
  if (!message->ParseFromArray(buf, static_cast<int>(n))) return absl::DataLossError("malformed packet");
  return true;
}

}  // namespace constellation
