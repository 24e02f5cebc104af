#include "lib/core/pid.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace constellation {
namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// FNV-1a over the fields: stable across processes and builds, unlike absl::Hash,
// so every process prints the same seven characters for the same Pid.
uint64_t StableHash(const Pid& pid) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint8_t byte) {
    h ^= byte;
    h *= 0x100000001b3ull;
  };
  for (uint8_t b : pid.addr()) mix(b);
  mix(pid.port() >> 8);
  mix(pid.port() & 0xff);
  for (int shift = 24; shift >= 0; shift -= 8) mix((pid.nonce() >> shift) & 0xff);
  // FNV's low bits mix poorly for short inputs; fold the high half in.
  return h ^ (h >> 29);
}

absl::Status ParseError(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad pid \"", text, "\": ", why, " (expected <ip>:<port>/<nonce hex>)"));
}

}  // namespace

Pid Pid::FromIpv4(uint32_t ipv4, uint16_t port, uint32_t nonce) {
  Address addr{};
  std::memcpy(addr.data(), kV4MappedPrefix, sizeof(kV4MappedPrefix));
  addr[12] = ipv4 >> 24;
  addr[13] = (ipv4 >> 16) & 0xff;
  addr[14] = (ipv4 >> 8) & 0xff;
  addr[15] = ipv4 & 0xff;
  return Pid(addr, port, nonce);
}

bool Pid::is_ipv4() const { return std::memcmp(addr_.data(), kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0; }

std::string Pid::ip_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_ipv4()) {
    inet_ntop(AF_INET, addr_.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, addr_.data(), buf, sizeof(buf));
  }
  return buf;
}

std::string Pid::to_string() const { return absl::StrFormat("%07x", StableHash(*this) & 0xfffffff); }

std::string Pid::to_full_string() const {
  if (is_ipv4()) return absl::StrFormat("%s:%u/%08x", ip_string(), port_, nonce_);
  return absl::StrFormat("[%s]:%u/%08x", ip_string(), port_, nonce_);
}

absl::StatusOr<Pid> Pid::Parse(absl::string_view text) {
  size_t slash = text.rfind('/');
  if (slash == absl::string_view::npos) return ParseError(text, "no '/'");
  absl::string_view host_port = text.substr(0, slash);
  absl::string_view nonce_text = text.substr(slash + 1);
  size_t colon = host_port.rfind(':');
  if (colon == absl::string_view::npos) return ParseError(text, "no ':'");
  std::string host(host_port.substr(0, colon));
  absl::string_view port_text = host_port.substr(colon + 1);

  uint32_t port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port > 0xffff) return ParseError(text, "bad port");
  uint32_t nonce = 0;
  if (nonce_text.empty() || nonce_text.size() > 8 || !absl::SimpleHexAtoi(nonce_text, &nonce)) {
    return ParseError(text, "bad nonce");
  }

  Address addr{};
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (inet_pton(AF_INET6, host.c_str(), addr.data()) != 1) return ParseError(text, "bad IPv6 address");
    return Pid(addr, static_cast<uint16_t>(port), nonce);
  }
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) != 1) return ParseError(text, "bad IPv4 address");
  return FromIpv4(ntohl(v4.s_addr), static_cast<uint16_t>(port), nonce);
}

}  // namespace constellation

size_t std::hash<constellation::Pid>::operator()(const constellation::Pid& pid) const {
  return absl::Hash<constellation::Pid>()(pid);
}
