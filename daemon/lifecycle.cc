#include "daemon/lifecycle.h"

#include <signal.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/log/log.h"

namespace constellation::daemon {
namespace {

// How often the loop looks at the status and the drain; the watchdog's
// half-interval when that is shorter.
constexpr absl::Duration kTick = absl::Milliseconds(200);

void Notify(const std::string& state) { sd_notify(0, state.c_str()); }

// Waits up to `timeout` for SIGINT or SIGTERM (blocked in every thread).
// Returns the signal, or 0 when the time passed.
int WaitForSignal(absl::Duration timeout) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts = absl::ToTimespec(std::max(timeout, absl::ZeroDuration()));
  while (true) {
    int signal = sigtimedwait(&set, nullptr, &ts);
    if (signal > 0) return signal;
    if (errno == EAGAIN) return 0;
    if (errno != EINTR) return 0;
  }
}

// The watchdog's keep-alive interval (half of WatchdogSec=), or none.
absl::Duration KeepAliveInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return absl::InfiniteDuration();
  return absl::Microseconds(usec) / 2;
}

class Loop {
 public:
  Loop() : keep_alive_(KeepAliveInterval()) {}

  // One tick's work: the keep-alive when due, STATUS= when changed.
  void Tick(const std::string& status) {
    absl::Time now = absl::Now();
    if (now >= next_keep_alive_) {
      Notify("WATCHDOG=1");
      next_keep_alive_ = now + keep_alive_;
    }
    if (status != last_status_) {
      Notify("STATUS=" + status);
      last_status_ = status;
    }
  }
  // Until when to wait for a signal: the next tick or keep-alive.
  absl::Duration Wait() const { return std::min(kTick, next_keep_alive_ - absl::Now()); }

 private:
  const absl::Duration keep_alive_;
  absl::Time next_keep_alive_ = absl::InfinitePast();
  std::string last_status_;
};

}  // namespace

void NotifyServing(const std::string& status) { Notify("READY=1\nSTATUS=" + status); }

void RunUntilDrained(const LifecycleHooks& hooks, absl::Duration drain_timeout) {
  Loop loop;
  int signal = 0;
  while (signal == 0) {
    loop.Tick(hooks.status());
    signal = WaitForSignal(loop.Wait());
  }
  Notify("STOPPING=1");
  hooks.drain();
  absl::Time deadline = absl::Now() + drain_timeout;
  size_t running = hooks.running();
  if (running > 0 && drain_timeout > absl::ZeroDuration()) {
    LogInfo("daemon", "%s: draining: no new work; waiting up to %s for %d running process(es)",
            signal == SIGTERM ? "SIGTERM" : "SIGINT", absl::FormatDuration(drain_timeout), running);
  }
  while (running > 0 && absl::Now() < deadline) {
    loop.Tick(absl::StrCat("draining: ", running, " process(es) still running"));
    if (WaitForSignal(std::min(loop.Wait(), deadline - absl::Now())) != 0) {
      LogInfo("daemon", "a second signal: killing what runs at once");
      break;
    }
    running = hooks.running();
  }
  if (running > 0) LogInfo("daemon", "stopping: killing %d process(es) still running", running);
  Notify("STATUS=stopping");
}

}  // namespace constellation::daemon
