#include "lib/net/frame.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace constellation::net {
namespace {

template <class T>
void Put(char*& p, T value) {
  std::memcpy(p, &value, sizeof(T));  // little-endian host (see lib/core/codec.h)
  p += sizeof(T);
}

template <class T>
T Get(const char*& p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  p += sizeof(T);
  return value;
}

void PutPid(char*& p, const Pid& pid) {
  std::memcpy(p, pid.addr().data(), 16);
  p += 16;
  Put<uint16_t>(p, pid.port());
  Put<uint32_t>(p, pid.nonce());
}

Pid GetPid(const char*& p) {
  Pid::Address addr;
  std::memcpy(addr.data(), p, 16);
  p += 16;
  uint16_t port = Get<uint16_t>(p);
  uint32_t nonce = Get<uint32_t>(p);
  return Pid(addr, port, nonce);
}

}  // namespace

// Hello: magic u32, version u16, kind u8, reserved u8, from (22 bytes), to (22 bytes), reserved u32.
void EncodeHello(const Hello& hello, char out[kHelloSize]) {
  char* p = out;
  Put<uint32_t>(p, kHelloMagic);
  Put<uint16_t>(p, kWireVersion);
  Put<uint8_t>(p, static_cast<uint8_t>(hello.kind));
  Put<uint8_t>(p, 0);
  PutPid(p, hello.from);
  PutPid(p, hello.to);
  Put<uint32_t>(p, 0);
}

absl::Status DecodeHello(const char in[kHelloSize], Hello* hello) {
  const char* p = in;
  uint32_t magic = Get<uint32_t>(p);
  if (magic != kHelloMagic) return absl::InvalidArgumentError(absl::StrCat("bad magic 0x", absl::Hex(magic)));
  uint16_t version = Get<uint16_t>(p);
  if (version != kWireVersion) return absl::InvalidArgumentError(absl::StrCat("unsupported version ", version));
  uint8_t kind = Get<uint8_t>(p);
  if (kind < 1 || kind > 5) return absl::InvalidArgumentError(absl::StrCat("bad hello kind ", kind));
  if (Get<uint8_t>(p) != 0) return absl::InvalidArgumentError("bad hello reserved byte");
  hello->kind = static_cast<HelloKind>(kind);
  hello->from = GetPid(p);
  hello->to = GetPid(p);
  if (Get<uint32_t>(p) != 0) return absl::InvalidArgumentError("bad hello reserved bytes");
  return absl::OkStatus();
}

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
