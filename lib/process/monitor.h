#pragma once

#include <sys/types.h>

namespace constellation {

// The monitor of one user process, run in the process's parent after fork:
// forwards the child's stdout and stderr (read from pipes) to the bridge as
// output events as soon as they are written, waits for the child, and reports
// its exit code or signal. If the bridge goes away it kills the child.
//
// `stdout_fd` and `stderr_fd` are the read ends of the child's output pipes,
// `bridge_fd` the process's connection to the bridge (shared with the child,
// which writes its spawn events to it); all are owned by the monitor.
// Returns when the child has exited and everything is reported; the caller
// then exits. Single-threaded.
void RunMonitor(pid_t child, int stdout_fd, int stderr_fd, int bridge_fd, const class Pid& pid);

}  // namespace constellation
