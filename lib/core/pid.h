#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace constellation {

// Pid names one process anywhere in the cluster. It is the address of the
// process's one data-plane listening socket (IPv6, or IPv4 mapped into IPv6)
// plus a random nonce chosen at init(), so two processes that bind the same
// port one after the other never share a Pid.
//
// A plain value type: cheap to copy, hashable, ordered, thread-compatible.
class Pid {
 public:
  using Address = std::array<uint8_t, 16>;

  // The null Pid: is_null() is true; it names no process.
  Pid() = default;
  Pid(const Address& addr, uint16_t port, uint32_t nonce) : addr_(addr), port_(port), nonce_(nonce) {}

  // An IPv4 address given in host byte order (0x7f000001 for 127.0.0.1).
  static Pid FromIpv4(uint32_t ipv4, uint16_t port, uint32_t nonce);

  // Parses to_full_string()'s output: "<ip>:<port>/<nonce hex>", IPv6 addresses in [brackets].
  static absl::StatusOr<Pid> Parse(absl::string_view text);

  // Seven hex characters of a hash of the whole Pid: what users and logs see.
  std::string to_string() const;

  // Every field, readable and round-tripping through Parse(): "127.0.0.1:40123/9f3a01bc".
  std::string to_full_string() const;

  const Address& addr() const { return addr_; }
  uint16_t port() const { return port_; }
  uint32_t nonce() const { return nonce_; }
  bool is_null() const { return *this == Pid(); }
  bool is_ipv4() const;

  // The IP part alone, as text ("127.0.0.1", "::1").
  std::string ip_string() const;

  friend bool operator==(const Pid& a, const Pid& b) { return a.Tie() == b.Tie(); }
  friend bool operator!=(const Pid& a, const Pid& b) { return !(a == b); }
  friend bool operator<(const Pid& a, const Pid& b) { return a.Tie() < b.Tie(); }

  template <typename H>
  friend H AbslHashValue(H h, const Pid& pid) {
    return H::combine(std::move(h), pid.addr_, pid.port_, pid.nonce_);
  }

  // Codec support (see lib/core/codec.h): a Pid travels as its three fields.
  template <class Archive>
  void serialize(Archive& ar) {
    ar(addr_, port_, nonce_);
  }

 private:
  std::tuple<const Address&, uint16_t, uint32_t> Tie() const { return {addr_, port_, nonce_}; }

  Address addr_{};
  uint16_t port_ = 0;
  uint32_t nonce_ = 0;
};

}  // namespace constellation

// std::hash so Pids key std::unordered_map as well as absl's containers.
template <>
struct std::hash<constellation::Pid> {
  size_t operator()(const constellation::Pid& pid) const;
};
