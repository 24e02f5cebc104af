#include "daemon/master/binary_distribution.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "daemon/log/log.h"

namespace constellation::daemon::master {
namespace {

// A stored binary's bytes.
class FileSource final : public ChunkSource {
 public:
  explicit FileSource(const std::string& path) : path_(path), fd_(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~FileSource() override {
    if (fd_ >= 0) close(fd_);
  }
  absl::StatusOr<size_t> Read(char* buf, size_t max) override {
    if (fd_ < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path_));
    ssize_t n;
    while ((n = read(fd_, buf, max)) < 0 && errno == EINTR) {
    }
    if (n < 0) return absl::InternalError(absl::StrCat("read ", path_, ": ", std::strerror(errno)));
    return static_cast<size_t>(n);
  }

 private:
  const std::string path_;
  const int fd_;
};

}  // namespace

BinaryDistribution::~BinaryDistribution() {
  std::list<std::unique_ptr<Prefetching>> prefetching;
  {
    std::lock_guard<std::mutex> lock(mu_);
    prefetching.swap(prefetching_);
  }
  for (const std::unique_ptr<Prefetching>& p : prefetching) p->thread.join();
}

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
  absl::Status sent = Send(node, binary);
  if (!sent.ok()) return sent;
  std::lock_guard<std::mutex> lock(mu_);
  nodes_[node.addr()].present.insert(binary.sha256());
  return absl::OkStatus();
}

absl::Status BinaryDistribution::Send(NodeClient& node, const pb::BinaryId& binary) {
  if (absl::Status valid = ValidateBinaryId(binary); !valid.ok()) return valid;
  absl::StatusOr<pb::HasBinaryReply> has = node.HasBinary(binary);
  if (!has.ok()) return has.status();
  if (has->present()) return absl::OkStatus();
  const bool same_machine = !boot_id_.empty() && has->boot_id() == boot_id_;
  if (std::unique_ptr<IncomingBinaries::Follower> follower =
          incoming_ != nullptr ? incoming_->Follow(binary) : nullptr) {
    // Still arriving. A node elsewhere gets the bytes as they come; one here
    // takes the stored copy once it is checked.
    if (!same_machine) return node.Upload(binary, *follower);
    if (absl::Status stored = follower->WaitStored(); !stored.ok()) return stored;
  }
  absl::StatusOr<std::string> path = cache_->VerifiedPath(binary);  // what the client uploaded, unchanged
  if (!path.ok()) return path.status();
  if (same_machine) {
    absl::Status adopted = node.Adopt(binary, *path);
    if (adopted.ok()) {
      cache_->LinkedElsewhere(binary);  // the link moved its ctime: no need to hash it again
      return adopted;
    }
    LogWarning("upload", "node %s did not take this machine's copy of %s (%s); sending it", node.addr(),
               binary.sha256(), adopted.message());
  }
  FileSource source(*path);
  return node.Upload(binary, source);
}

void BinaryDistribution::Prefetch(NodeClient& node, const pb::BinaryId& binary) {
  auto prefetch = std::make_unique<Prefetching>();
  Prefetching* raw = prefetch.get();
  std::list<std::unique_ptr<Prefetching>> finished;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = prefetching_.begin(); it != prefetching_.end();) {
    auto next = std::next(it);
    if ((*it)->done.load()) finished.splice(finished.end(), prefetching_, it);
    it = next;
  }
  prefetch->thread = std::thread([this, &node, binary, raw] {
    absl::Status status = EnsureOn(node, binary);
    if (!status.ok()) {
      LogWarning("upload", "sending %s to node %s ahead of its job: %s", binary.sha256(), node.addr(),
                 status.message());
    }
    raw->done.store(true);
  });
  prefetching_.push_back(std::move(prefetch));
  for (const std::unique_ptr<Prefetching>& p : finished) p->thread.join();  // done: returns at once
}

void BinaryDistribution::Forget(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  nodes_[addr].present.clear();
}

}  // namespace constellation::daemon::master
