#pragma once

#include <sys/types.h>

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

// The monitor of one user process, run in the process's parent after fork:
// forwards the child's stdout and stderr to the bridge as output events as
// soon as they are written, relays the child's own packets (spawn events)
// after forwarding the output written before them, waits for the child, and
// reports its exit code or signal. If the bridge goes away it kills the child.
// Returns when the child has exited and everything is reported; the caller
// then exits. Single-threaded.
void RunMonitor(const MonitorFds& fds, const Pid& pid);

}  // namespace constellation
