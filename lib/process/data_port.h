#pragma once

#include "absl/status/statusor.h"
#include "lib/core/pid.h"

namespace constellation::process_internal {

// A process's one data-plane socket and the Pid it makes.
struct DataPort {
  int fd = -1;  // bound and listening, CLOEXEC
  Pid pid;
};

// Binds a TCP socket on 127.0.0.1 at an ephemeral port, listens, and names
// it with a fresh random nonce. spawn() calls it for the child, so the
// child's Pid is known (and connectable) before the child runs.
absl::StatusOr<DataPort> BindDataPort();

}  // namespace constellation::process_internal
