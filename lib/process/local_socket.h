#pragma once

// Local mode's control connections (and the node agent's): SOCK_SEQPACKET
// unix sockets, one pb::LocalMessage per packet. Packets keep message
// boundaries and are written atomically, so a process and its monitor can
// share one connection to the bridge without interleaving.
//
// Whoever can connect to a bridge can ask it to spawn processes as its user,
// so the socket is a file in a private directory (0700, made with mkdtemp,
// see private_dir.h) that only its user can open, never an abstract name
// (those are open to every user of the machine and listed in
// /proc/net/unix); and the listener checks each connection's SO_PEERCRED.
// SpawnInfo.bridge carries the socket's path to the processes.

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/local.pb.h"

namespace constellation::internal {

// Largest packet: an output chunk plus headers. Monitors read output in
// chunks of kMaxOutputChunk.
inline constexpr size_t kMaxOutputChunk = 64 * 1024;
inline constexpr size_t kMaxPacket = kMaxOutputChunk + 1024;

// A listening socket at `path` inside the private directory `dir`.
struct LocalListener {
  int fd = -1;       // CLOEXEC, non-blocking
  std::string path;  // what processes connect to
  std::string dir;
};

// Makes a private directory (MakePrivateTempDir(tag)) and listens on
// "<dir>/sock" in it. The caller closes `fd` and calls RemoveLocalListener
// when done.
absl::StatusOr<LocalListener> ListenLocal(absl::string_view tag);

// Removes the socket file and its directory (not the fd). Only the process
// that made it should: a forked child must not.
void RemoveLocalListener(const LocalListener& listener);

// Connects (CLOEXEC, blocking) to the socket at `path`.
absl::StatusOr<int> ConnectLocal(absl::string_view path);

// Who connected: the credentials the kernel recorded when the peer called
// connect() (SO_PEERCRED): they are the connecting process's, not those of
// whoever holds the fd later.
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
absl::StatusOr<PeerCredentials> PeerOf(int fd);

// Sends one message; blocks while the socket buffer is full. Thread-safe
// per packet (the kernel writes each packet whole).
absl::Status SendLocal(int fd, const pb::LocalMessage& message);

// Receives one message. Returns false at end of stream; an error for a
// malformed or oversized packet, or EAGAIN on a non-blocking socket
// (absl::UnavailableError).
// `dont_wait` makes this one call non-blocking on a blocking socket.
absl::StatusOr<bool> ReceiveLocal(int fd, pb::LocalMessage* message, bool dont_wait = false);

}  // namespace constellation::internal
