#include "lib/process/zygote_socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace constellation::process_internal {

void ZygoteMessage::CloseFds() {
  for (int i = 0; i < nfds; ++i) close(fds[i]);
  nfds = 0;
}

bool ReceiveZygoteMessage(int sock, ZygoteMessage* m) {
  char bytes[1 + kMaxZygoteMessagePayload];
  iovec iov{bytes, sizeof(bytes)};
  // Room for more fds than a message carries, so that extra ones are seen (and closed).
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxZygoteMessageFds + 2))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (m->nfds < kMaxZygoteMessageFds) {
        m->fds[m->nfds++] = fd;
      } else {
        close(fd);
        m->cut = true;
      }
    }
  }
  m->tag = bytes[0];
  m->payload.assign(bytes + 1, static_cast<size_t>(n) - 1);
  m->cut = m->cut || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;
  return true;
}

bool SendZygoteMessage(int sock, char tag, const int* fds, int nfds, const std::string& payload, int flags) {
  if (nfds < 0 || nfds > kMaxZygoteMessageFds || payload.size() > kMaxZygoteMessagePayload) return false;
  std::string bytes(1, tag);
  bytes += payload;
  iovec iov{bytes.data(), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxZygoteMessageFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(bytes.size());
}

}  // namespace constellation::process_internal
