#pragma once

// Local mode's control connections: SOCK_SEQPACKET unix sockets in the
// abstract namespace, one pb::LocalMessage per packet. Packets keep message
// boundaries and are written atomically, so a process and its monitor can
// share one connection to the bridge without interleaving.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/local.pb.h"

namespace constellation {

// Largest packet: an output chunk plus headers. Monitors read output in
// chunks of kMaxOutputChunk.
inline constexpr size_t kMaxOutputChunk = 64 * 1024;
inline constexpr size_t kMaxPacket = kMaxOutputChunk + 1024;

// A fresh, unique abstract socket name for a bridge: "constellation-<pid>-<random>".
std::string NewBridgeName();

// Binds and listens (CLOEXEC, non-blocking) on the abstract name.
absl::StatusOr<int> ListenLocal(absl::string_view name);

// Connects (CLOEXEC, blocking) to the abstract name.
absl::StatusOr<int> ConnectLocal(absl::string_view name);

// Sends one message; blocks while the socket buffer is full. Thread-safe
// per packet (the kernel writes each packet whole).
absl::Status SendLocal(int fd, const pb::LocalMessage& message);

// Receives one message. Returns false at end of stream; an error for a
// malformed or oversized packet, or EAGAIN on a non-blocking socket
// (absl::UnavailableError).
// `dont_wait` makes this one call non-blocking on a blocking socket.
absl::StatusOr<bool> ReceiveLocal(int fd, pb::LocalMessage* message, bool dont_wait = false);

}  // namespace constellation
