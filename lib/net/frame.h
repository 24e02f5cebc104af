#pragma once

// The data plane's wire format (see docs/channels.md). Plain structs and
// functions, no I/O; thread-compatible.
//
// A connection starts with one Hello each way (dialer first, acceptor replies),
// then carries frames: a 24-byte header and `length` payload bytes.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "lib/core/pid.h"

namespace constellation::net {

inline constexpr uint32_t kHelloMagic = 0x4c545343;  // "CSTL" on the wire
inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kHelloSize = 56;
inline constexpr size_t kFrameHeaderSize = 24;
// The largest encoded value one frame may carry; a header claiming more is hostile.
inline constexpr uint64_t kMaxFramePayload = uint64_t{4} << 30;
// The longest type name an Open frame may carry.
inline constexpr uint64_t kMaxTypeName = 4096;

enum class HelloKind : uint8_t {
  kDial = 1,      // dialer -> acceptor: "I am `from`, I want `to`"
  kAccept = 2,    // acceptor -> dialer: the connection is open
  kTieBreak = 3,  // acceptor -> dialer: we are dialing you too and my connection wins; wait for it
  kWrongPid = 4,  // acceptor -> dialer: `to` is not me (the process you want has exited)
  kExiting = 5,   // acceptor -> dialer: I am exiting
};

struct Hello {
  HelloKind kind = HelloKind::kDial;
  Pid from;
  Pid to;
};

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

void EncodeHello(const Hello& hello, char out[kHelloSize]);
absl::Status DecodeHello(const char in[kHelloSize], Hello* hello);

void EncodeFrameHeader(const FrameHeader& header, char out[kFrameHeaderSize]);
// Checks kind, reserved bytes and the length limits of each kind.
absl::Status DecodeFrameHeader(const char in[kFrameHeaderSize], FrameHeader* header);

}  // namespace constellation::net
