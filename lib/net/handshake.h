#pragma once

// The data plane's hello (see docs/channels.md, "The hello"): the messages a
// connection starts with, their encoding, and the HMAC-SHA256 proofs that
// admit only processes holding the deployment's secret. Plain functions and
// structs, no I/O; thread-safe (no shared state).
//
// Four messages, dialer (D) and acceptor (A):
//   D -> A  kDial       nonce_d                                   (reveals nothing)
//   A -> D  kChallenge  nonce_a, AcceptorMac(nonce_d, nonce_a)     (reveals nothing)
//   D -> A  kProof      from, to, DialerMac(nonces, from, to)     (only once A proved itself)
//   A -> D  verdict     from, VerdictMac(nonces, D, A, kind)      (only once D proved itself)
// where verdict is kAccept, kTieBreak, kWrongPid or kExiting; frames follow
// a kAccept. An acceptor that evicts a connection before it proved itself
// (the bound on unauthenticated connections) sends kBusy, which carries
// nothing and proves nothing: the dialer may try again.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/core/pid.h"

namespace constellation::net {

inline constexpr uint32_t kHelloMagic = 0x4c545343;  // "CSTL" on the wire
// 1: one unauthenticated Hello each way. 2: the challenge-response below.
// 3: the same hello; strings and vectors of numbers travel as their bytes
// alone (lib/core/channel_value.h), so a process of version 2 would misread them.
inline constexpr uint16_t kWireVersion = 3;
inline constexpr size_t kSecretSize = 32;
inline constexpr size_t kNonceSize = 16;
inline constexpr size_t kMacSize = 32;
// Magic, version, kind, reserved byte: the start of every hello message.
inline constexpr size_t kHelloPrefixSize = 8;
// The longest hello message (kProof).
inline constexpr size_t kMaxHelloSize = 84;

enum class HelloKind : uint8_t {
  kDial = 1,       // dialer -> acceptor: nonce_d
  kAccept = 2,     // verdict: the connection is open
  kTieBreak = 3,   // verdict: we are dialing you too and my connection wins; wait for it
  kWrongPid = 4,   // verdict: `to` is not me (the process you want has exited)
  kExiting = 5,    // verdict: I am exiting
  kChallenge = 6,  // acceptor -> dialer: nonce_a and the acceptor's proof
  kProof = 7,      // dialer -> acceptor: from, to and the dialer's proof
  kBusy = 8,       // acceptor -> dialer, unauthenticated: too many connections are proving themselves; try again
};

using Nonce = std::array<uint8_t, kNonceSize>;
using Mac = std::array<uint8_t, kMacSize>;

// One hello message; which fields are on the wire depends on `kind` (above).
struct HelloMessage {
  HelloKind kind = HelloKind::kDial;
  Nonce nonce{};  // kDial, kChallenge
  Mac mac{};      // kChallenge, kProof, verdicts
  Pid from;       // kProof (the dialer), verdicts (the acceptor)
  Pid to;         // kProof: the process the dialer wants
};

// What a finished hello tells the DataPlane: the dialer's claim (kDial, from
// the acceptor's side, once proved) or the acceptor's verdict (kBusy included).
struct Hello {
  HelloKind kind = HelloKind::kDial;
  Pid from;
  Pid to;
};

bool IsVerdict(HelloKind kind);

// The size of a message of `kind` on the wire.
size_t HelloSize(HelloKind kind);
// Checks the prefix (magic, version, kind, reserved byte) and returns the
// size of the whole message.
absl::StatusOr<size_t> DecodeHelloPrefix(const char prefix[kHelloPrefixSize]);
// Writes HelloSize(message.kind) bytes to `out` (at least kMaxHelloSize long); returns that size.
size_t EncodeHello(const HelloMessage& message, char* out);
std::string EncodeHello(const HelloMessage& message);
// `in` holds a whole message (DecodeHelloPrefix said how long).
absl::Status DecodeHello(const char* in, size_t size, HelloMessage* message);

// The proofs. Each has its own label, so a MAC made for one role or step is
// never valid for another (no reflection); each covers both fresh nonces, so
// none can be replayed on another connection. The acceptor's proof cannot
// cover the Pids: neither side has disclosed one yet.
Mac AcceptorMac(std::string_view secret, const Nonce& dialer, const Nonce& acceptor);
Mac DialerMac(std::string_view secret, const Nonce& dialer, const Nonce& acceptor, const Pid& from, const Pid& to);
Mac VerdictMac(std::string_view secret, const Nonce& dialer, const Nonce& acceptor, const Pid& dialer_pid,
               const Pid& acceptor_pid, HelloKind verdict);
// Constant time.
bool MacEqual(const Mac& a, const Mac& b);
// HMAC-SHA256 with a key of at most 64 bytes (what the proofs use).
Mac HmacSha256(std::string_view key, std::string_view data);

// Fresh randomness from the kernel (getrandom); aborts if the kernel has none.
Nonce NewNonce();
// A new deployment's secret: kSecretSize random bytes.
std::string NewDeploymentSecret();

}  // namespace constellation::net
