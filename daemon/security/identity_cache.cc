#include "daemon/security/identity_cache.h"

namespace constellation::daemon::security {

absl::StatusOr<Identity> IdentityCache::Get(absl::string_view pem) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = known_.find(pem);
    if (it != known_.end()) return it->second;
  }
  // Parsed outside the lock: calls of other peers need not wait for it.
  absl::StatusOr<Identity> identity = parse_(std::string(pem));
  std::lock_guard<std::mutex> lock(mu_);
  if (known_.size() >= max_entries_) known_.clear();
  known_.insert_or_assign(std::string(pem), identity);
  return identity;
}

size_t IdentityCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return known_.size();
}

}  // namespace constellation::daemon::security
