#pragma once

// MonitorSlot: what a Monitor (lib/process/monitors.h) waits on. Empty until
// its Down is set, once; then that Down for good, to every wait. Blocking
// waits sleep on a condition variable; select and coroutines register
// net::Waiters, fired when the Down is set.
//
// Ownership: shared (std::shared_ptr) by the Monitor and, until the Down is
// set, the MonitorTable. Threading: thread-safe. Set runs on the data plane's
// loop thread and fires the waiters under the slot's lock (net::Waiter's
// contract: Fire is short; once Watch(w, false) returns, w is not fired).

#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "lib/net/mutex.h"
#include "lib/net/waiter.h"
#include "lib/process/down.h"

namespace constellation::process_internal {

class MonitorSlot {
 public:
  MonitorSlot() = default;
  MonitorSlot(const MonitorSlot&) = delete;
  MonitorSlot& operator=(const MonitorSlot&) = delete;

  // Keeps `down` unless a Down is set already, and wakes every wait.
  void Set(const Down& down);
  // The Down, if set.
  std::optional<Down> Get() const;
  // Waits until the Down is set or `deadline` passes.
  std::optional<Down> WaitUntil(absl::Time deadline) const;
  // Registers (add) or unregisters `waiter`, fired when the Down is set.
  void Watch(net::Waiter* waiter, bool add);

 private:
  mutable net::Mutex mu_;
  mutable net::CondVar set_cv_;
  std::optional<Down> down_ ABSL_GUARDED_BY(mu_);
  std::vector<net::Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace constellation::process_internal
