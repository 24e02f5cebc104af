#pragma once

// Monitors and links, Erlang style, in local and cluster mode.
//
//   constellation::Monitor m = constellation::monitor(child);
//   constellation::Down down = m.wait();          // or co_await m.async_wait()
//   if (down.abnormal()) fprintf(stderr, "%s\n", down.to_string().c_str());
//
// monitor(pid) gives a Monitor that becomes ready exactly once, when `pid` is
// gone, with a Down{pid, reason}: Exited{code}, Signaled{signal},
// OutOfMemory{}, NoProcess{} (no such process in this program) or NodeLost{}
// (cluster mode: its node was declared lost). Every wait after that gives
// the same Down. The bridge (local mode) or the master and node agents
// (cluster mode) know every exit: monitoring costs nothing while the process
// runs, and a process that has ended already gives how it ended. This process
// remembers every verdict it received, so monitoring a pid again, or one it
// has a channel with, is answered at once. Dropping a Monitor stops the
// monitoring (there is no other demonitor).
//
// link(pid): when `pid` ends abnormally (anything but Exited{0}: a non-zero
// code, a signal, out of memory, no such process, its node lost), this
// process is terminated at once (its data plane's thread calls _exit: no exit
// flush, no destructors) with exit code kLinkedExitCode and one line on stderr:
//   constellation: terminating: linked process 7c95efa exited with code 3 (call trap_exits(true) ...)
// so a failure spreads through linked processes, as in Erlang. After
// trap_exits(true) it does not terminate: the Down arrives on the Monitor
// that link() returned, as with monitor() (keep that Monitor, or the Down is
// lost). Whether exits are trapped is looked at when the Down arrives. A
// normal exit (code 0) never terminates; it, too, arrives on the Monitor. A
// link is one-way (the linked process knows nothing of it): for Erlang's
// two-way link, both processes call link() on each other. A link lasts for
// the life of this process (dropping its Monitor does not undo it).
//
// A process cannot monitor or link itself (its own end is not something it
// can wait for): monitor(pid()) and link(pid()) abort with a message. The
// null Pid gives NoProcess at once. All of them abort before init().
//
// Threading: monitor, link and trap_exits from any thread. A Monitor may be
// waited on from several threads at once (moving or destroying it needs the
// blocking waits ended; async_wait and on_down keep what they wait on alive).
// The Down is set on the data plane's thread, which wakes the waits.

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/async/wait.h"
#include "lib/core/pid.h"
#include "lib/net/select.h"
#include "lib/process/down.h"

namespace constellation {

namespace process_internal {
class MonitorSlot;
struct MonitorAccess;  // tests make Monitors on slots of their own
}  // namespace process_internal

namespace async_internal {
// The awaitable of Monitor::async_wait.
class DownWait final : public Wait {
 public:
  explicit DownWait(std::shared_ptr<process_internal::MonitorSlot> slot);
  ~DownWait();
  Down await_resume() { return std::move(*down_); }

 private:
  bool TryComplete() override;
  void Subscribe(bool add) override;

  std::shared_ptr<process_internal::MonitorSlot> slot_;
  std::optional<Down> down_;
};
}  // namespace async_internal

class Monitor {
 public:
  Monitor(Monitor&&) = default;
  Monitor& operator=(Monitor&&) = default;
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // The monitored process.
  const Pid& pid() const { return pid_; }
  // Blocks until the process is gone.
  Down wait() const;
  // The Down if the process is gone, without waiting.
  std::optional<Down> try_wait() const;
  // DEADLINE_EXCEEDED if the process is still there after `timeout`.
  absl::StatusOr<Down> wait_for(absl::Duration timeout) const;
  // co_await m.async_wait() gives the Down; suspends the coroutine, not the
  // thread.
  async_internal::DownWait async_wait() const;

 private:
  friend Monitor monitor(Pid pid);
  friend Monitor link(Pid pid);
  friend struct process_internal::MonitorAccess;
  template <class F>
  friend SelectCase on_down(const Monitor& monitor, F callback);
  Monitor(Pid pid, std::shared_ptr<process_internal::MonitorSlot> slot);
  const process_internal::MonitorSlot& slot() const;  // aborts on a moved-from Monitor
  static bool TryDown(process_internal::MonitorSlot& slot, std::optional<Down>* down);
  static void WatchDown(process_internal::MonitorSlot& slot, net::Waiter* waiter, bool add);

  Pid pid_;
  std::shared_ptr<process_internal::MonitorSlot> slot_;
};

Monitor monitor(Pid pid);
Monitor link(Pid pid);
void trap_exits(bool on);

// A select / select_async case: ready once the monitored process is gone;
// runs callback(Down). The case keeps what it waits on alive (the Monitor
// may be moved meanwhile).
template <class F>
SelectCase on_down(const Monitor& monitor, F callback) {
  std::shared_ptr<process_internal::MonitorSlot> slot = monitor.slot_;
  monitor.slot();  // aborts on a moved-from Monitor
  return SelectCase([slot](net::Waiter* waiter, bool add) { Monitor::WatchDown(*slot, waiter, add); },
                    [slot, callback]() mutable {
                      std::optional<Down> down;
                      if (!Monitor::TryDown(*slot, &down)) return false;
                      callback(std::move(*down));
                      return true;
                    });
}

}  // namespace constellation
