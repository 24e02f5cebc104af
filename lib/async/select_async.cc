#include "lib/async/select_async.h"

#include <atomic>
#include <utility>

#include "absl/time/clock.h"

namespace constellation {
namespace async_internal {

SelectWait::SelectWait(std::vector<SelectCase> cases, absl::Time deadline) : Wait(deadline), cases_(std::move(cases)) {
  static std::atomic<size_t> rotation{0};
  if (!cases_.empty()) start_ = rotation.fetch_add(1, std::memory_order_relaxed) % cases_.size();
}

bool SelectWait::TryComplete() {
  if (cases_.empty()) {
    result_.emplace(absl::InvalidArgumentError("select_async with no cases"));
    return true;
  }
  for (size_t k = 0; k < cases_.size(); ++k) {
    const size_t i = (start_ + k) % cases_.size();
    if (cases_[i].TryRun()) {
      result_.emplace(i);
      return true;
    }
  }
  return false;
}

void SelectWait::Subscribe(bool add) {
  for (const SelectCase& c : cases_) c.Watch(this, add);
}

void SelectWait::TimedOut() {
  // A case that became ready as the time ran out still runs.
  if (TryComplete()) return;
  result_.emplace(absl::DeadlineExceededError("select_async: no case became ready in time"));
}

}  // namespace async_internal

async_internal::SelectWait select_async(std::vector<SelectCase> cases, std::optional<absl::Duration> timeout) {
  return async_internal::SelectWait(std::move(cases), timeout ? absl::Now() + *timeout : absl::InfiniteFuture());
}

}  // namespace constellation
