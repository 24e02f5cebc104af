#include "lib/pool/future_state.h"

#include <algorithm>
#include <utility>

namespace constellation::pool_internal {

void FutureState::Complete(absl::StatusOr<std::string> result) {
  net::MutexLock lock(&mu_);
  if (result_.has_value()) return;
  result_ = std::move(result);
  done_.NotifyAll();
  // Fired under the lock: a waiter removing itself waits for this to end.
  for (net::Waiter* waiter : waiters_) waiter->Fire();
  waiters_.clear();
}

std::optional<absl::StatusOr<std::string>> FutureState::TryGet() const {
  net::MutexLock lock(&mu_);
  return result_;
}

absl::StatusOr<std::string> FutureState::Get() const {
  net::MutexLock lock(&mu_);
  while (!result_.has_value()) done_.Wait(&mu_);
  return *result_;
}

void FutureState::Watch(net::Waiter* waiter, bool add) {
  net::MutexLock lock(&mu_);
  if (!add) {
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
    return;
  }
  if (result_.has_value()) {
    waiter->Fire();
    return;
  }
  waiters_.push_back(waiter);
}

}  // namespace constellation::pool_internal
