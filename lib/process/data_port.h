#pragma once

#include "absl/status/statusor.h"
#include "lib/core/pid.h"

namespace constellation::process_internal {

// A process's one data-plane socket and the Pid it makes.
struct DataPort {
  int fd = -1;  // bound and listening, CLOEXEC
  Pid pid;
};

// Binds a TCP socket on `ipv4` (host byte order; 127.0.0.1 in local mode, the
// node's address in cluster mode) at an ephemeral port, listens, and names it
// with a fresh random nonce. spawn() calls it for the child, so the child's
// Pid is known (and connectable) before the child runs.
absl::StatusOr<DataPort> BindDataPort(uint32_t ipv4 = 0x7f000001);

}  // namespace constellation::process_internal
