// libFuzzer target for the hello decoder (lib/net/frame.h): the input is read
// as a sequence of kHelloSize-byte hellos, the first bytes an unauthenticated
// peer sends. Each must decode or fail cleanly, never crash or read out of
// bounds; a hello that decodes must encode back to the same bytes.
// Run with tools/fuzz.sh hello_fuzzer SECONDS; see docs/fuzzing.md.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lib/net/frame.h"
#include "tools/fuzz/seeds.h"

namespace constellation::net {
namespace {

void CheckHello(const char* bytes) {
  Hello hello;
  if (!DecodeHello(bytes, &hello).ok()) return;
  char again[kHelloSize];
  EncodeHello(hello, again);
  if (std::memcmp(again, bytes, kHelloSize) != 0) fuzz::Violated("a decoded hello encodes differently");
}

std::string Encoded(HelloKind kind, const Pid& from, const Pid& to) {
  Hello hello;
  hello.kind = kind;
  hello.from = from;
  hello.to = to;
  char out[kHelloSize];
  EncodeHello(hello, out);
  return std::string(out, kHelloSize);
}

}  // namespace

}  // namespace constellation::net

namespace constellation::fuzz {

std::vector<Seed> Seeds() {
  using namespace constellation::net;
  Pid a = Pid::FromIpv4(0x7f000001, 40000, 0xdeadbeef);
  Pid b = Pid::FromIpv4(0x0a000002, 1, 7);
  return {
      {"dial", Encoded(HelloKind::kDial, a, b)},
      {"accept", Encoded(HelloKind::kAccept, b, a)},
      {"replies", Encoded(HelloKind::kTieBreak, b, a) + Encoded(HelloKind::kWrongPid, b, a) +
                      Encoded(HelloKind::kExiting, b, Pid())},
  };
}

}  // namespace constellation::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using constellation::net::kHelloSize;
  for (size_t at = 0; at + kHelloSize <= size; at += kHelloSize) {
    std::vector<char> hello(data + at, data + at + kHelloSize);
    constellation::net::CheckHello(hello.data());
  }
  return 0;
}
