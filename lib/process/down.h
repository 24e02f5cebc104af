#pragma once

// Down: why a monitored or linked process is gone (lib/process/monitors.h).
// A plain value type, thread-compatible.

#include <string>
#include <variant>

#include "lib/core/pid.h"

namespace constellation {

// It exited (returned from main or its function, or called exit) with `code`.
struct Exited {
  int code = 0;
};
// A signal killed it (not the kernel's memory limit: that is OutOfMemory).
struct Signaled {
  int signal = 0;
};
// The kernel killed it for exceeding the memory it was spawned with.
struct OutOfMemory {};
// No such process in this program: a made-up Pid, or one of another program
// or deployment. (A process of this program that has ended already gives how
// it ended, not NoProcess.)
struct NoProcess {};
// Its node was declared lost by the master (cluster mode): how it ended, or
// whether it still runs cut off, cannot be known.
struct NodeLost {};

// The exit code of a process terminated because a process it linked to
// (link(), lib/process/monitors.h) ended abnormally while it did not trap
// exits. (Not one of sysexits.h's 64-78, nor 128 + a signal.)
inline constexpr int kLinkedExitCode = 79;

using DownReason = std::variant<Exited, Signaled, OutOfMemory, NoProcess, NodeLost>;

struct Down {
  Pid pid;
  DownReason reason;
  // What the system added, when it knows more ("exceeded its memory limit of
  // 64 MiB"); often empty.
  std::string detail;

  // Anything but Exited{0}: what terminates a process linked to this one.
  bool abnormal() const;
  // "process 7c95efa exited with code 3", "process 7c95efa was killed by
  // signal 9 (SIGKILL)", "... ran out of memory", "... does not exist in this program (...)",
  // "... is gone: its node was lost"; the detail follows in parentheses.
  std::string to_string() const;
};

}  // namespace constellation
