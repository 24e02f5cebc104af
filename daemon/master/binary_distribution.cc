#include "daemon/master/binary_distribution.h"

namespace constellation::daemon::master {

absl::Status BinaryDistribution::EnsureOn(NodeClient& node, const pb::BinaryId& binary) {
  std::shared_ptr<std::mutex> upload_mu;
  {
    std::lock_guard<std::mutex> lock(mu_);
    PerNode& known = nodes_[node.addr()];
    if (known.present.contains(binary.sha256())) return absl::OkStatus();
    upload_mu = known.upload_mu;
  }
  std::lock_guard<std::mutex> upload_lock(*upload_mu);  // one upload to a node at a time
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (nodes_[node.addr()].present.contains(binary.sha256())) return absl::OkStatus();  // sent while we waited
  }
  absl::StatusOr<std::string> path = cache_->VerifiedPath(binary);  // what the client uploaded, unchanged
  if (!path.ok()) return path.status();
  absl::StatusOr<bool> has = node.HasBinary(binary);
  if (!has.ok()) return has.status();
  if (!*has) {
    absl::Status sent = node.Upload(binary, *path);
    if (!sent.ok()) return sent;
  }
  std::lock_guard<std::mutex> lock(mu_);
  nodes_[node.addr()].present.insert(binary.sha256());
  return absl::OkStatus();
}

void BinaryDistribution::Forget(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  nodes_[addr].present.clear();
}

}  // namespace constellation::daemon::master
