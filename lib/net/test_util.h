#pragma once

// Helpers for data-plane tests: listening sockets on 127.0.0.1:0 with made-up
// Pids, and DataPlane instances on them. Thread-compatible.

#include <cstdint>
#include <memory>
#include <string>

#include "lib/core/pid.h"
#include "lib/net/data_plane.h"

namespace constellation::net::testing {

struct Listener {
  int fd = -1;
  Pid pid;
};

// A socket bound to 127.0.0.1:0 and listening; pid has its port and a nonce.
Listener Listen(uint32_t nonce);

// Options with small bounds and short timeouts so tests run fast.
DataPlane::Options TestOptions();

std::unique_ptr<DataPlane> MakePlane(uint32_t nonce, DataPlane::Options options = TestOptions());

// Connects a raw client socket (blocking) to `pid`'s port; -1 on failure.
int RawConnect(const Pid& pid);

// Writes all of `bytes` to `fd`; false on error.
bool WriteAll(int fd, const std::string& bytes);

}  // namespace constellation::net::testing
