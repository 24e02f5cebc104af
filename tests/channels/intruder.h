#pragma once

// What the hostile scenarios' attackers do on a raw socket: connect to a
// process's data port, write bytes, run the hello by hand (with the program's
// secret, as an insider, or without it, as an outsider) and watch what comes
// back. They fail the process (scenarios_util.h) when the socket misbehaves.

#include <optional>
#include <string>

#include "constellation/constellation.h"
#include "lib/net/frame.h"
#include "lib/net/handshake.h"

namespace channel_scenarios {

// A blocking TCP connection to `target`'s data port.
int ConnectTo(const constellation::Pid& target);
// Best effort: the attacked process may close the connection before it has all of it.
void WriteAll(int fd, const std::string& data);
// Reads until the peer closes the connection (EOF or reset); returns what it
// sent first. Fails if it stays open for 20 s. Closes fd.
std::string ReadUntilClosed(int fd, const std::string& what);

std::string HeaderBytes(constellation::net::FrameKind kind, uint8_t channel, uint64_t fingerprint, uint64_t length);
std::string DialBytes(const constellation::net::Nonce& nonce);

// One hello run by hand, then `after` written behind the proof (and the
// write side shut if `half_close`), then read until the process closes.
struct Intrusion {
  std::string challenge;                                 // the bytes of the acceptor's challenge
  std::string rest;                                      // everything after it until the close
  std::optional<constellation::net::HelloKind> verdict;  // if `rest` starts with one
};
// `secret` empty: an outsider's guess (a random MAC). Fails the process if
// the connection is left open for 20 s.
Intrusion Intrude(const constellation::Pid& target, const constellation::Pid& from, const constellation::Pid& to,
                  const std::string& secret, const std::string& after, bool half_close = false);

}  // namespace channel_scenarios
