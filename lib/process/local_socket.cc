#include "lib/process/local_socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/process/private_dir.h"

namespace constellation {
namespace {

absl::StatusOr<sockaddr_un> PathAddress(absl::string_view path, socklen_t* len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path[0] != '/' || path.size() + 1 > sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\" is not an absolute socket path of at most ", sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return addr;
}

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<LocalListener> ListenLocal(absl::string_view tag) {
  absl::StatusOr<std::string> dir = MakePrivateTempDir(tag);
  if (!dir.ok()) return dir.status();
  LocalListener listener;
  listener.dir = *dir;
  listener.path = *dir + "/sock";
  socklen_t len = 0;
  absl::StatusOr<sockaddr_un> addr = PathAddress(listener.path, &len);
  absl::Status status = addr.status();
  if (status.ok()) {
    listener.fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listener.fd < 0 || bind(listener.fd, reinterpret_cast<sockaddr*>(&*addr), len) != 0 ||
        listen(listener.fd, SOMAXCONN) != 0) {
      status = Errno(absl::StrCat("listen on ", listener.path));
    }
  }
  if (!status.ok()) {
    if (listener.fd >= 0) close(listener.fd);
    RemoveLocalListener(listener);
    return status;
  }
  return listener;
}

void RemoveLocalListener(const LocalListener& listener) {
  if (!listener.path.empty()) unlink(listener.path.c_str());
  if (!listener.dir.empty()) rmdir(listener.dir.c_str());
}

absl::StatusOr<PeerCredentials> PeerOf(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return Errno("SO_PEERCRED");
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

absl::StatusOr<int> ConnectLocal(absl::string_view path) {
  socklen_t len = 0;
  absl::StatusOr<sockaddr_un> addr = PathAddress(path, &len);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&*addr), len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    absl::Status status = Errno(absl::StrCat("connect to the bridge at ", path));
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
  bool reset = false;
  while (true) {
    n = recv(fd, buf, sizeof(buf), MSG_TRUNC | (dont_wait ? MSG_DONTWAIT : 0));
    if (n >= 0 || errno == EINTR) {
      if (n >= 0) break;
      continue;
    }
    // The peer closed with packets of ours unread: the kernel reports that
    // once, before the packets it had sent us. Read those (they may be its
    // last words: an exit event), then its end.
    if (errno == ECONNRESET && !reset) {
      reset = true;
      continue;
    }
    break;
  }
  if (n < 0) {
    if (errno == ECONNRESET) return false;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return reset ? absl::StatusOr<bool>(false) : absl::UnavailableError("no packet");
    return Errno("recv");
  }
  if (n == 0) return false;
  if (static_cast<size_t>(n) > sizeof(buf)) return absl::DataLossError(absl::StrCat("oversized packet: ", n));
  if (!message->ParseFromArray(buf, static_cast<int>(n))) return absl::DataLossError("malformed packet");
  return true;
}

}  // namespace constellation
