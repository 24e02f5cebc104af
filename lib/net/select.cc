#include "lib/net/select.h"

#include <sched.h>

#include <atomic>

#include "absl/time/clock.h"
#include "lib/net/busy_poll.h"
#include "lib/net/peer.h"
#include "lib/net/waiter.h"

namespace constellation {

void SelectCase::Watch(net::Waiter* waiter, bool add) const {
  if (peer_ == nullptr) return subscribe_(waiter, add);
  if (is_send_) {
    add ? peer_->AddSendWaiter(waiter) : peer_->RemoveSendWaiter(waiter);
  } else {
    add ? peer_->AddRecvWaiter(waiter) : peer_->RemoveRecvWaiter(waiter);
  }
}

absl::StatusOr<size_t> select(std::initializer_list<SelectCase> cases, std::optional<absl::Duration> timeout) {
  static std::atomic<size_t> rotation{0};
  const absl::Time deadline = timeout ? absl::Now() + *timeout : absl::InfiniteFuture();
  const size_t n = cases.size();
  const SelectCase* items = cases.begin();
  if (n == 0) return absl::InvalidArgumentError("select with no cases");
  const size_t start = rotation.fetch_add(1, std::memory_order_relaxed) % n;
  auto try_all = [&]() -> std::optional<size_t> {
    for (size_t k = 0; k < n; ++k) {
      size_t i = (start + k) % n;
      if (items[i].TryRun()) return i;
    }
    return std::nullopt;
  };
  if (auto done = try_all()) return *done;
  if (const int64_t spin_ns = net::BusyPollNs(); spin_ns > 0) {
    // Busy-polling (opt-in, busy_poll.h): look again for a while before
    // sleeping (a receive case in user mode reads its socket when it looks).
    const int64_t until_ns = absl::GetCurrentTimeNanos() + spin_ns;
    while (absl::GetCurrentTimeNanos() < until_ns && absl::Now() < deadline) {
      if (auto done = try_all()) return *done;
      sched_yield();  // as Peer's spin: the sender may share this CPU
    }
  }
  net::BlockingWaiter waiter;
  auto subscribe = [&](bool add) {
    for (size_t i = 0; i < n; ++i) items[i].Watch(&waiter, add);
  };
  while (true) {
    subscribe(true);
    // Tried again after subscribing: a change between the last try and now fires the waiter.
    std::optional<size_t> done = try_all();
    bool fired = done.has_value() || waiter.WaitUntil(deadline);
    subscribe(false);
    if (done) return *done;
    if (!fired) {
      if (auto last = try_all()) return *last;
      return absl::DeadlineExceededError("select: no case became ready in time");
    }
    waiter.Reset();
    if (auto ready = try_all()) return *ready;
  }
}

}  // namespace constellation
