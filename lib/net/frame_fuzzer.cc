// libFuzzer target for the frame header decoder (lib/net/frame.h): the input
// is read as a sequence of kFrameHeaderSize-byte headers, as a peer's stream
// would be. Each must decode to a header or an error, never crash or read out
// of bounds; a header that decodes must be within the payload limit and encode
// back to the same bytes (the decoder accepts nothing it would not write).
// Run with tools/fuzz.sh frame_fuzzer SECONDS; see docs/fuzzing.md.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lib/net/frame.h"
#include "tools/fuzz/seeds.h"

namespace constellation::net {
namespace {

void CheckHeader(const char* bytes) {
  FrameHeader header;
  if (!DecodeFrameHeader(bytes, &header).ok()) return;
  if (header.length > kMaxFramePayload) fuzz::Violated("a header over kMaxFramePayload decoded");
  char again[kFrameHeaderSize];
  EncodeFrameHeader(header, again);
  if (std::memcmp(again, bytes, kFrameHeaderSize) != 0) fuzz::Violated("a decoded header encodes differently");
}

std::string Encoded(FrameKind kind, uint64_t fingerprint, uint64_t length) {
  FrameHeader header;
  header.kind = kind;
  header.fingerprint = fingerprint;
  header.length = length;
  char out[kFrameHeaderSize];
  EncodeFrameHeader(header, out);
  return std::string(out, kFrameHeaderSize);
}

}  // namespace

}  // namespace constellation::net

namespace constellation::fuzz {

std::vector<Seed> Seeds() {
  using namespace constellation::net;
  return {
      {"data", Encoded(FrameKind::kData, 0x1234567890abcdef, 100)},
      {"data-at-limit", Encoded(FrameKind::kData, 1, kMaxFramePayload)},
      {"open", Encoded(FrameKind::kOpen, 42, 12)},
      {"close-sequence",
       Encoded(FrameKind::kClose, 0, 0) + Encoded(FrameKind::kCloseAck, 0, 0) + Encoded(FrameKind::kCloseNak, 0, 0)},
  };
}

}  // namespace constellation::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using constellation::net::kFrameHeaderSize;
  for (size_t at = 0; at + kFrameHeaderSize <= size; at += kFrameHeaderSize) {
    // A copy of exactly one header, so that reading past it is caught.
    std::vector<char> header(data + at, data + at + kFrameHeaderSize);
    constellation::net::CheckHeader(header.data());
  }
  return 0;
}
