#pragma once

// Helpers for data-plane tests: listening sockets on 127.0.0.1:0 with made-up
// Pids, and DataPlane instances on them. Thread-compatible.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/core/pid.h"
#include "lib/net/data_plane.h"
#include "lib/net/frame.h"
#include "lib/net/handshake.h"

namespace constellation::net::testing {

struct Listener {
  int fd = -1;
  Pid pid;
};

// A socket bound to 127.0.0.1:0 and listening; pid has its port and a nonce.
Listener Listen(uint32_t nonce);

// The secret TestOptions gives every plane (a test's "deployment").
std::string TestSecret();

// Options with TestSecret(), small bounds and short timeouts so tests run fast.
DataPlane::Options TestOptions();

std::unique_ptr<DataPlane> MakePlane(uint32_t nonce, DataPlane::Options options = TestOptions());

// Two planes (two "processes") for a test's channels.
struct PlanePair {
  std::unique_ptr<DataPlane> a = MakePlane(0xa);
  std::unique_ptr<DataPlane> b = MakePlane(0xb);
};

// Waits until a thread blocked in recv on `peer` holds the read role; false
// after 30 s.
bool WaitUntilUserReading(Peer& peer);

// Connects a raw client socket (blocking) to `pid`'s port; -1 on failure.
int RawConnect(const Pid& pid);

// Writes all of `bytes` to `fd`; false on error.
bool WriteAll(int fd, const std::string& bytes);

// Reads one hello message from `fd` (blocking); Unavailable at EOF.
absl::StatusOr<HelloMessage> ReadHello(int fd);

// A hello run by hand from a raw socket (a test's "dialer"). `secret` may be
// wrong; the acceptor's proof is not checked (a tampering dialer would not).
struct RawHello {
  int fd = -1;  // the connection (open unless closed() later says otherwise)
  HelloMessage challenge;
  absl::StatusOr<HelloMessage> verdict = absl::UnknownError("no verdict");
  std::string extra;  // written right after the proof (frames, say)
};
RawHello RawDial(const Pid& target, const Pid& from, const Pid& to, const std::string& secret,
                 const std::string& after_proof = "");
// The acceptor's half of a hello, run by hand (a test's raw "process" that a
// plane dials): accepts one connection on `listen_fd` (waiting at most 30 s),
// proves itself as `self` and answers kAccept without checking the dialer's
// proof. The blocking connection, or -1.
int RawAccept(int listen_fd, const Pid& self, const std::string& secret);
// A frame header with any length, even one DecodeFrameHeader refuses.
std::string HeaderBytes(FrameKind kind, uint64_t length, uint64_t fingerprint = 1);
// Reads until the peer closes `fd`; returns what it sent meanwhile, followed
// by kStillOpen if it is still open after 30 s. Closes fd.
inline constexpr char kStillOpen[] = "<still open after 30 s>";
std::string ReadUntilClosed(int fd);

// Of raw connections `open` (a flood's), closes and drops those the other
// end has closed, draining what the others have waiting.
void CloseThoseClosedByPeer(std::vector<int>* open);

}  // namespace constellation::net::testing
