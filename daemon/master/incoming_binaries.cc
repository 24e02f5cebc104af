#include "daemon/master/incoming_binaries.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace constellation::daemon::master {

struct IncomingBinaries::State {
  explicit State(pb::BinaryId binary) : id(std::move(binary)) {}
  ~State() {
    if (fd >= 0) close(fd);
  }
  const pb::BinaryId id;
  std::mutex mu;
  std::condition_variable cv;
  int fd = -1;            // guarded by mu until received > 0; read with pread after
  uint64_t received = 0;  // guarded by mu: bytes written and hashed
  enum class Phase { kReceiving, kStored, kFailed } phase = Phase::kReceiving;  // guarded by mu
  absl::Status failure;                                                         // guarded by mu
};

namespace {

// Waits until `ready` holds, as long as the upload keeps making progress:
// false once it made none for `stall`.
template <typename Ready>
bool WaitWhileProgressing(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, const uint64_t& received,
                          absl::Duration stall, Ready ready) {
  while (!ready()) {
    uint64_t before = received;
    if (!cv.wait_for(lock, absl::ToChronoNanoseconds(stall), [&] { return ready() || received != before; })) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> IncomingBinaries::Receive(const pb::BinaryId& id) {
  std::shared_ptr<State> state;
  while (state == nullptr) {
    std::shared_ptr<State> other;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::shared_ptr<State>& slot = receiving_[id.sha256()];
      if (slot == nullptr) {
        slot = std::make_shared<State>(id);
        state = slot;
        break;
      }
      other = slot;
    }
    std::unique_lock<std::mutex> lock(other->mu);
    bool ended = WaitWhileProgressing(lock, other->cv, other->received, stall_timeout_,
                                      [&] { return other->phase != State::Phase::kReceiving; });
    if (ended && other->phase == State::Phase::kStored && other->id.size() == id.size()) return nullptr;
    if (!ended) {
      // The other client stalls: receive this one's bytes alongside, unannounced.
      state = std::make_shared<State>(id);
    }
    // It failed (and is gone from the map): try to be the one receiving.
  }
  if (cache_->Has(id)) {
    // Another upload was stored and left the map between our caller's check
    // and our claim: nothing to receive.
    Settle(state, absl::OkStatus());
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<BinaryCache::Upload>> upload = cache_->Begin(id);
  if (!upload.ok()) {
    Settle(state, upload.status());
    return upload.status();
  }
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->fd = (*upload)->OpenForReading();
  }
  return std::make_unique<Receiving>(this, state, *std::move(upload));
}

std::unique_ptr<IncomingBinaries::Follower> IncomingBinaries::Follow(const pb::BinaryId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = receiving_.find(id.sha256());
  if (it == receiving_.end() || it->second->id.size() != id.size()) return nullptr;
  return std::make_unique<Follower>(it->second, stall_timeout_);
}

void IncomingBinaries::Settle(const std::shared_ptr<State>& state, const absl::Status& outcome) {
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->phase = outcome.ok() ? State::Phase::kStored : State::Phase::kFailed;
    state->failure = outcome;
  }
  state->cv.notify_all();
  Remove(state);
}

void IncomingBinaries::Remove(const std::shared_ptr<State>& state) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = receiving_.find(state->id.sha256());
  if (it != receiving_.end() && it->second == state) receiving_.erase(it);
}

IncomingBinaries::Receiving::~Receiving() {
  if (!ended_) End(absl::CancelledError("the client abandoned its upload"));
}

absl::Status IncomingBinaries::Receiving::Append(absl::string_view data) {
  absl::Status appended = upload_->Append(data);
  if (!appended.ok()) {
    End(appended);
    return appended;
  }
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->received += data.size();
  }
  state_->cv.notify_all();
  return absl::OkStatus();
}

absl::Status IncomingBinaries::Receiving::Finish() {
  absl::Status stored = upload_->Finish();
  End(stored);
  return stored;
}

void IncomingBinaries::Receiving::End(absl::Status outcome) {
  ended_ = true;
  upload_.reset();  // a failed upload's temporary file goes now
  owner_->Settle(state_, outcome);
}

absl::StatusOr<size_t> IncomingBinaries::Follower::Read(char* buf, size_t max) {
  std::unique_lock<std::mutex> lock(state_->mu);
  bool ready = WaitWhileProgressing(lock, state_->cv, state_->received, stall_timeout_, [&] {
    return state_->received > offset_ || state_->phase != State::Phase::kReceiving;
  });
  if (!ready) return absl::DeadlineExceededError("the upload to the master stalled");
  if (state_->phase == State::Phase::kFailed) {
    return absl::AbortedError(absl::StrCat("the upload to the master failed: ", state_->failure.message()));
  }
  size_t n = std::min<uint64_t>(max, state_->received - offset_);
  if (n == 0) return 0;  // stored, and all of it read
  if (state_->fd < 0) return absl::InternalError("cannot read the upload in progress");
  const int fd = state_->fd;
  lock.unlock();  // the bytes below `received` are written and never change
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, buf + done, n - done, offset_ + done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return absl::InternalError(absl::StrCat("reading the upload in progress: ", std::strerror(errno)));
    done += r;
  }
  offset_ += n;
  return n;
}

absl::Status IncomingBinaries::Follower::WaitStored() {
  std::unique_lock<std::mutex> lock(state_->mu);
  bool ended = WaitWhileProgressing(lock, state_->cv, state_->received, stall_timeout_,
                                    [&] { return state_->phase != State::Phase::kReceiving; });
  if (!ended) return absl::DeadlineExceededError("the upload to the master stalled");
  if (state_->phase == State::Phase::kFailed) {
    return absl::AbortedError(absl::StrCat("the upload to the master failed: ", state_->failure.message()));
  }
  return absl::OkStatus();
}

}  // namespace constellation::daemon::master
