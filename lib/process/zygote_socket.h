#pragma once

// The zygote's messages (lib/process/zygote.h): on its socket with the
// bridge, a spare's with the zygote, and a spare's control socket with its
// user process. Each is one SOCK_SEQPACKET packet: a tag byte, a payload of
// at most kMaxZygoteMessagePayload bytes, and at most kMaxZygoteMessageFds
// fds (SCM_RIGHTS). The peers are the program's own processes; a message
// that does not fit is marked, never half taken.
//
// Threading: plain functions, no shared state.

#include <cstddef>
#include <string>

namespace constellation::process_internal {

inline constexpr int kMaxZygoteMessageFds = 2;
inline constexpr size_t kMaxZygoteMessagePayload = 8192;  // a cgroup base: two paths

struct ZygoteMessage {
  char tag = 0;
  std::string payload;
  int fds[kMaxZygoteMessageFds] = {-1, -1};
  int nfds = 0;      // how many were kept (any beyond kMaxZygoteMessageFds are closed)
  bool cut = false;  // the payload or the fds did not fit
  // Closes the fds kept (for a message refused).
  void CloseFds();
};

// Receives one message (its fds CLOEXEC), retrying EINTR. False when the
// other end is closed (or the socket failed).
bool ReceiveZygoteMessage(int sock, ZygoteMessage* message);

// Sends one message with `nfds` fds from `fds`; `flags` adds to
// MSG_NOSIGNAL (MSG_DONTWAIT, say). False if it was not sent whole, or does
// not fit a message.
bool SendZygoteMessage(int sock, char tag, const int* fds, int nfds, const std::string& payload, int flags = 0);

}  // namespace constellation::process_internal
