#pragma once

#include <sys/types.h>

#include "lib/core/resources.h"
#include "lib/process/cgroup.h"
#include "proto/local.pb.h"

namespace constellation {

class Pid;

// The file descriptors a monitor serves; it owns them all.
struct MonitorFds {
  pid_t child = 0;     // the user process
  int stdout_fd = -1;  // read ends of the child's output pipes
  int stderr_fd = -1;
  int control_fd = -1;  // packets from the child for the bridge (spawn events)
  int bridge_fd = -1;   // this process's connection to the bridge (or node agent)
};

// What the monitor enforces and reports beside the process's output.
struct MonitorLimits {
  Resources resources;  // as given, for the out-of-memory message
  CgroupLeaf leaf;      // the child's cgroup (maybe none), removed once it exited
  pb::CgroupBase base;  // its launcher's; removed if the launcher dies and this was last
};

// The exit code a process that exited 0 is reported with when its exit flush
// left channel data undelivered (EX_IOERR; docs/channels.md).
inline constexpr int kUndeliveredExitCode = 74;

// The monitor of one user process, run in the process's parent after fork:
// forwards the child's stdout and stderr to the bridge as output events as
// soon as they are written, relays the child's own packets (spawn events)
// after forwarding the output written before them, waits for the child, and
// reports its exit code or signal, with the child's peak memory and CPU time,
// and whether the kernel killed it for exceeding its memory limit (or, when
// it exited 0 but said its exit flush left channel data undelivered, exit
// code kUndeliveredExitCode). Packets from the bridge (spawn replies, verdicts)
// are relayed to the child. If the
// bridge goes away it kills the child. Returns when the child has exited, its
// cgroup is gone and everything is reported; the caller then exits.
// Single-threaded.
void RunMonitor(const MonitorFds& fds, MonitorLimits limits, const Pid& pid);

}  // namespace constellation
