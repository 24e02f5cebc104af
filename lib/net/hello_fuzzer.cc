// libFuzzer target for the hello decoder (lib/net/handshake.h): the input is
// read as a sequence of hello messages, the first bytes a peer that has proved
// nothing sends. Each prefix and message must decode or fail cleanly, never
// crash or read out of bounds; a message that decodes must encode back to
// the same bytes.
// Run with tools/fuzz.sh hello_fuzzer SECONDS; see docs/fuzzing.md.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lib/net/handshake.h"
#include "tools/fuzz/seeds.h"

namespace constellation::net {
namespace {

// Decodes one message at the start of `in`; returns the bytes it took, 0 to stop.
size_t CheckOne(const char* in, size_t size) {
  if (size < kHelloPrefixSize) return 0;
  absl::StatusOr<size_t> length = DecodeHelloPrefix(in);
  if (!length.ok()) return 0;
  if (*length < kHelloPrefixSize || *length > kMaxHelloSize) fuzz::Violated("a prefix claims an impossible size");
  if (*length > size) return 0;
  std::vector<char> copy(in, in + *length);  // exactly the message: ASan sees any read past it
  HelloMessage message;
  if (DecodeHello(copy.data(), copy.size(), &message).ok()) {
    if (HelloSize(message.kind) != copy.size()) fuzz::Violated("a decoded message has another kind's size");
    std::string again = EncodeHello(message);
    if (again != std::string(copy.data(), copy.size())) fuzz::Violated("a decoded hello encodes differently");
  }
  return *length;
}

std::string Encoded(HelloKind kind, const Pid& from, const Pid& to) {
  HelloMessage message;
  message.kind = kind;
  message.nonce = NewNonce();
  message.mac = HmacSha256("key", "data");
  message.from = from;
  message.to = to;
  return EncodeHello(message);
}

}  // namespace
}  // namespace constellation::net

namespace constellation::fuzz {

std::vector<Seed> Seeds() {
  using namespace constellation::net;
  Pid a = Pid::FromIpv4(0x7f000001, 40000, 0xdeadbeef);
  Pid b = Pid::FromIpv4(0x0a000002, 1, 7);
  return {
      {"dial", Encoded(HelloKind::kDial, Pid(), Pid())},
      {"challenge", Encoded(HelloKind::kChallenge, Pid(), Pid())},
      {"proof", Encoded(HelloKind::kProof, a, b)},
      {"accept", Encoded(HelloKind::kAccept, b, a)},
      {"verdicts", Encoded(HelloKind::kTieBreak, b, a) + Encoded(HelloKind::kWrongPid, b, a) +
                       Encoded(HelloKind::kExiting, b, Pid()) + Encoded(HelloKind::kBusy, Pid(), Pid())},
  };
}

}  // namespace constellation::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* in = reinterpret_cast<const char*>(data);
  while (size > 0) {
    size_t used = constellation::net::CheckOne(in, size);
    if (used == 0) break;
    in += used;
    size -= used;
  }
  return 0;
}
