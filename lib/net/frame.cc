#include "lib/net/frame.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/net/wire_bytes.h"

namespace constellation::net {
namespace {

using wire::Get;
using wire::Put;

}  // namespace

// Header: kind u8, channel u8, reserved u16, reserved u32, fingerprint u64, length u64.
void EncodeFrameHeader(const FrameHeader& header, char out[kFrameHeaderSize]) {
  char* p = out;
  Put<uint8_t>(p, static_cast<uint8_t>(header.kind));
  Put<uint8_t>(p, header.channel);
  Put<uint16_t>(p, 0);
  Put<uint32_t>(p, 0);
  Put<uint64_t>(p, header.fingerprint);
  Put<uint64_t>(p, header.length);
}

absl::Status DecodeFrameHeader(const char in[kFrameHeaderSize], FrameHeader* header) {
  const char* p = in;
  uint8_t kind = Get<uint8_t>(p);
  uint8_t channel = Get<uint8_t>(p);
  uint16_t reserved16 = Get<uint16_t>(p);
  uint32_t reserved32 = Get<uint32_t>(p);
  header->fingerprint = Get<uint64_t>(p);
  header->length = Get<uint64_t>(p);
  if (kind < 1 || kind > 5) return absl::InvalidArgumentError(absl::StrCat("bad frame kind ", kind));
  if (channel != kChannelForward || reserved16 != 0 || reserved32 != 0) {
    return absl::InvalidArgumentError("bad frame header reserved bytes");
  }
  header->kind = static_cast<FrameKind>(kind);
  header->channel = channel;
  uint64_t limit = 0;
  if (header->kind == FrameKind::kData) limit = kMaxFramePayload;
  if (header->kind == FrameKind::kOpen) limit = kMaxTypeName;
  if (header->length > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame claims ", header->length, " bytes, more than the limit of ", limit));
  }
  return absl::OkStatus();
}

}  // namespace constellation::net
