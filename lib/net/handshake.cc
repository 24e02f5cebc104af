#include "lib/net/handshake.h"

// The low-level SHA-256 (deprecated in OpenSSL 3, not removed): EVP's HMAC
// fetches its implementation from a provider, which costs about 6 ms on a
// process's first hello (start-up latency) and uses global state that exit()
// frees under a loop thread still running a hello.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/net/wire_bytes.h"

namespace constellation::net {
namespace {

constexpr size_t kPidSize = 22;  // address 16, port 2, nonce 4

using wire::Get;
using wire::Put;

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

template <size_t N>
void PutBytes(char*& p, const std::array<uint8_t, N>& bytes) {
  std::memcpy(p, bytes.data(), N);
  p += N;
}

template <size_t N>
void GetBytes(const char*& p, std::array<uint8_t, N>* bytes) {
  std::memcpy(bytes->data(), p, N);
  p += N;
}

// HMAC-SHA256(secret, label || 0 || fields). An empty secret (a process that
// was given none) makes a MAC nobody else can match: every hello fails.
Mac Hmac(std::string_view secret, std::string_view label, const std::string& fields) {
  std::string input(label);
  input.push_back('\0');
  input += fields;
  Mac mac{};
  if (secret.size() != kSecretSize) {
    // Fail closed: a random MAC, different every time.
    Nonce a = NewNonce(), b = NewNonce();
    std::memcpy(mac.data(), a.data(), kNonceSize);
    std::memcpy(mac.data() + kNonceSize, b.data(), kNonceSize);
    return mac;
  }
  return HmacSha256(secret, input);
}

std::string Fields(const Nonce& dialer, const Nonce& acceptor) {
  std::string s(reinterpret_cast<const char*>(dialer.data()), kNonceSize);
  s.append(reinterpret_cast<const char*>(acceptor.data()), kNonceSize);
  return s;
}

void AppendPid(std::string* s, const Pid& pid) {
  char bytes[kPidSize];
  char* p = bytes;
  PutPid(p, pid);
  s->append(bytes, kPidSize);
}

void FillRandom(void* out, size_t size) {
  auto* p = static_cast<uint8_t*>(out);
  while (size > 0) {
    ssize_t n = getrandom(p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "constellation: getrandom: %s\n", std::strerror(errno));
      std::abort();
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

Mac HmacSha256(std::string_view key, std::string_view data) {
  // RFC 2104 with a key of at most one block (64 bytes).
  constexpr size_t kBlock = 64;
  if (key.size() > kBlock) {
    std::fprintf(stderr, "constellation: HMAC key longer than a block\n");
    std::abort();
  }
  unsigned char inner_pad[kBlock], outer_pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) {
    unsigned char k = i < key.size() ? static_cast<unsigned char>(key[i]) : 0;
    inner_pad[i] = k ^ 0x36;
    outer_pad[i] = k ^ 0x5c;
  }
  unsigned char inner[SHA256_DIGEST_LENGTH];
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, inner_pad, kBlock);
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(inner, &ctx);
  Mac mac;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, outer_pad, kBlock);
  SHA256_Update(&ctx, inner, sizeof(inner));
  SHA256_Final(mac.data(), &ctx);
  OPENSSL_cleanse(inner_pad, kBlock);
  OPENSSL_cleanse(outer_pad, kBlock);
  return mac;
}

bool IsVerdict(HelloKind kind) {
  return kind == HelloKind::kAccept || kind == HelloKind::kTieBreak || kind == HelloKind::kWrongPid ||
         kind == HelloKind::kExiting;
}

size_t HelloSize(HelloKind kind) {
  switch (kind) {
    case HelloKind::kDial:
      return kHelloPrefixSize + kNonceSize;
    case HelloKind::kChallenge:
      return kHelloPrefixSize + kNonceSize + kMacSize;
    case HelloKind::kProof:
      return kHelloPrefixSize + 2 * kPidSize + kMacSize;
    case HelloKind::kBusy:
      return kHelloPrefixSize;
    default:  // verdicts
      return kHelloPrefixSize + kPidSize + kMacSize;
  }
}

absl::StatusOr<size_t> DecodeHelloPrefix(const char prefix[kHelloPrefixSize]) {
  const char* p = prefix;
  uint32_t magic = Get<uint32_t>(p);
  if (magic != kHelloMagic) return absl::InvalidArgumentError(absl::StrCat("bad magic 0x", absl::Hex(magic)));
  uint16_t version = Get<uint16_t>(p);
  if (version != kWireVersion) return absl::InvalidArgumentError(absl::StrCat("unsupported version ", version));
  uint8_t kind = Get<uint8_t>(p);
  if (kind < 1 || kind > 8) return absl::InvalidArgumentError(absl::StrCat("bad hello kind ", kind));
  if (Get<uint8_t>(p) != 0) return absl::InvalidArgumentError("bad hello reserved byte");
  return HelloSize(static_cast<HelloKind>(kind));
}

size_t EncodeHello(const HelloMessage& m, char* out) {
  char* p = out;
  Put<uint32_t>(p, kHelloMagic);
  Put<uint16_t>(p, kWireVersion);
  Put<uint8_t>(p, static_cast<uint8_t>(m.kind));
  Put<uint8_t>(p, 0);
  switch (m.kind) {
    case HelloKind::kDial:
      PutBytes(p, m.nonce);
      break;
    case HelloKind::kChallenge:
      PutBytes(p, m.nonce);
      PutBytes(p, m.mac);
      break;
    case HelloKind::kProof:
      PutPid(p, m.from);
      PutPid(p, m.to);
      PutBytes(p, m.mac);
      break;
    case HelloKind::kBusy:
      break;
    default:
      PutPid(p, m.from);
      PutBytes(p, m.mac);
      break;
  }
  return static_cast<size_t>(p - out);
}

std::string EncodeHello(const HelloMessage& message) {
  char bytes[kMaxHelloSize];
  return std::string(bytes, EncodeHello(message, bytes));
}

absl::Status DecodeHello(const char* in, size_t size, HelloMessage* m) {
  if (size < kHelloPrefixSize) return absl::InvalidArgumentError("short hello");
  absl::StatusOr<size_t> expected = DecodeHelloPrefix(in);
  if (!expected.ok()) return expected.status();
  if (*expected != size) return absl::InvalidArgumentError("hello of the wrong size");
  const char* p = in + 6;
  m->kind = static_cast<HelloKind>(Get<uint8_t>(p));
  p = in + kHelloPrefixSize;
  switch (m->kind) {
    case HelloKind::kDial:
      GetBytes(p, &m->nonce);
      break;
    case HelloKind::kChallenge:
      GetBytes(p, &m->nonce);
      GetBytes(p, &m->mac);
      break;
    case HelloKind::kProof:
      m->from = GetPid(p);
      m->to = GetPid(p);
      GetBytes(p, &m->mac);
      break;
    case HelloKind::kBusy:
      break;
    default:
      m->from = GetPid(p);
      GetBytes(p, &m->mac);
      break;
  }
  return absl::OkStatus();
}

Mac AcceptorMac(std::string_view secret, const Nonce& dialer, const Nonce& acceptor) {
  return Hmac(secret, "constellation data plane v2: acceptor proof", Fields(dialer, acceptor));
}

Mac DialerMac(std::string_view secret, const Nonce& dialer, const Nonce& acceptor, const Pid& from, const Pid& to) {
  std::string fields = Fields(dialer, acceptor);
  AppendPid(&fields, from);
  AppendPid(&fields, to);
  return Hmac(secret, "constellation data plane v2: dialer proof", fields);
}

Mac VerdictMac(std::string_view secret, const Nonce& dialer, const Nonce& acceptor, const Pid& dialer_pid,
               const Pid& acceptor_pid, HelloKind verdict) {
  std::string fields = Fields(dialer, acceptor);
  AppendPid(&fields, dialer_pid);
  AppendPid(&fields, acceptor_pid);
  fields.push_back(static_cast<char>(verdict));
  return Hmac(secret, "constellation data plane v2: acceptor verdict", fields);
}

bool MacEqual(const Mac& a, const Mac& b) { return CRYPTO_memcmp(a.data(), b.data(), kMacSize) == 0; }

Nonce NewNonce() {
  Nonce nonce;
  FillRandom(nonce.data(), nonce.size());
  return nonce;
}

std::string NewDeploymentSecret() {
  std::string secret(kSecretSize, '\0');
  FillRandom(secret.data(), secret.size());
  return secret;
}

}  // namespace constellation::net
