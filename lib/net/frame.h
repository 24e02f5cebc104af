#pragma once

// The data plane's wire format (see docs/channels.md). Plain structs and
// functions, no I/O; thread-compatible.
//
// A connection starts with the hello (handshake.h), then carries frames: a
// 24-byte header and `length` payload bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace constellation::net {

inline constexpr size_t kFrameHeaderSize = 24;
// The largest encoded value one frame may carry; a header claiming more is hostile.
inline constexpr uint64_t kMaxFramePayload = uint64_t{4} << 30;
// The longest type name an Open frame may carry.
inline constexpr uint64_t kMaxTypeName = 4096;

enum class FrameKind : uint8_t {
  kData = 1,      // one encoded value of the channel's type
  kOpen = 2,      // a Sender's first frame: payload = its type's name, fingerprint = its type's fingerprint
  kClose = 3,     // idle teardown: "I have no channels to you and nothing queued"
  kCloseAck = 4,  // "nor have I": both sides close
  kCloseNak = 5,  // "I still use this connection": keep it
};

// Each connection carries one channel per direction (at most one live Sender
// per peer pid), so `channel` names the direction: always kChannelForward,
// "the writer's Sender to the reader's Receiver". Other values are reserved.
inline constexpr uint8_t kChannelForward = 0;

struct FrameHeader {
  FrameKind kind = FrameKind::kData;
  uint8_t channel = kChannelForward;
  uint64_t fingerprint = 0;
  uint64_t length = 0;
};

void EncodeFrameHeader(const FrameHeader& header, char out[kFrameHeaderSize]);
// Checks kind, reserved bytes and the length limits of each kind.
absl::Status DecodeFrameHeader(const char in[kFrameHeaderSize], FrameHeader* header);

}  // namespace constellation::net
