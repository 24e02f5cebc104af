#include "lib/net/recv_queue.h"

#include <algorithm>

namespace constellation::net {

using namespace peer_internal;

RecvQueue::RecvQueue(size_t max_frames, size_t max_bytes)
    : max_bytes_(max_bytes), frames_(kInitialSlots, max_frames), spares_(max_bytes + kOneValue) {}

void RecvQueue::RemoveWaiter(Waiter* w) {
  MutexLock lock(&mu_);
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), w));
}

std::string RecvQueue::TypeName(uint64_t fingerprint) {
  MutexLock lock(&mu_);
  auto it = type_names_.find(fingerprint);
  return it == type_names_.end() ? "<unknown type>" : it->second;
}

void RecvQueue::SetTypeName(uint64_t fingerprint, std::string name) {
  MutexLock lock(&mu_);
  type_names_[fingerprint] = std::move(name);
}

bool RecvQueue::ReleaseIdleMemory() {
  const uint64_t deliveries = deliveries_.load(std::memory_order_relaxed);
  const bool quiet = deliveries == deliveries_at_release_ && frames_.empty();
  if (quiet) {
    frames_.ShrinkIfEmpty();
    spares_.Release();
  }
  deliveries_at_release_ = deliveries;
  return quiet;
}

}  // namespace constellation::net
