#include "lib/process/monitor_slot.h"

#include <algorithm>

namespace constellation::process_internal {

void MonitorSlot::Set(const Down& down) {
  net::MutexLock lock(&mu_);
  if (down_.has_value()) return;
  down_ = down;
  for (net::Waiter* waiter : waiters_) waiter->Fire();
  set_cv_.NotifyAll();
}

std::optional<Down> MonitorSlot::Get() const {
  net::MutexLock lock(&mu_);
  return down_;
}

std::optional<Down> MonitorSlot::WaitUntil(absl::Time deadline) const {
  net::MutexLock lock(&mu_);
  while (!down_.has_value() && set_cv_.WaitUntil(&mu_, deadline)) {
  }
  return down_;
}

void MonitorSlot::Watch(net::Waiter* waiter, bool add) {
  net::MutexLock lock(&mu_);
  if (add) {
    waiters_.push_back(waiter);
  } else {
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
  }
}

}  // namespace constellation::process_internal
