#pragma once
// The daemon's life after start-up, as systemd sees it (sd_notify(3)):
//
//   Serving(): READY=1, once the caller's ports answer.
//   Run():     the main loop, on the thread that waits for signals. Every tick it
//              sends WATCHDOG=1 (when the unit has WatchdogSec=; at half the
//              interval) and STATUS= when the status text changed. The status
//              and running() calls take the daemon's own locks, so a daemon
//              that hangs on one stops its keep-alives and systemd restarts it.
//              The first SIGTERM or SIGINT drains: STOPPING=1, drain() (refuse
//              new work), then wait until running() is 0 or `drain_timeout`
//              passes; a second signal ends the wait at once. Returns then: the
//              caller shuts its servers down and kills what is left.
//
// Without $NOTIFY_SOCKET every sd_notify is a no-op: the loop runs the same.
// Threading: Run() on the main thread, with SIGINT and SIGTERM blocked in
// every thread (main() blocks them before any thread starts).
#include <functional>
#include <string>

#include "absl/time/time.h"

namespace constellation::daemon {

struct LifecycleHooks {
  std::function<std::string()> status;  // the STATUS= text, e.g. "serving; 2 of 3 nodes attached"
  std::function<size_t()> running;      // processes still running here
  std::function<void()> drain;          // stop taking new work (once)
};

// READY=1 with the first STATUS=.
void NotifyServing(const std::string& status);

// Blocks until SIGTERM/SIGINT and the drain are over; see above.
void RunUntilDrained(const LifecycleHooks& hooks, absl::Duration drain_timeout);

}  // namespace constellation::daemon
