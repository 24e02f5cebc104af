#include "daemon/master/gone_broadcast.h"

#include <algorithm>

namespace constellation::daemon::master {

GoneBroadcast::GoneBroadcast(ClientOf clients, Timers* timers, absl::Duration retry)
    : clients_(std::move(clients)), timers_(timers), retry_(retry) {}

GoneBroadcast::~GoneBroadcast() { Shutdown(); }

void GoneBroadcast::Shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  shut_down_ = true;
  outboxes_.clear();  // calls in flight find no outbox: nothing is retried
  cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void GoneBroadcast::Queue(const std::string& node, uint64_t deployment, const pb::ProcessGone& gone) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return;
  Outbox& outbox = outboxes_[{node, deployment}];
  outbox.forgotten = false;
  outbox.queued.push_back(gone);
}

void GoneBroadcast::Flush() {
  std::vector<Call> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready = TakeReadyLocked();
  }
  for (Call& call : ready) Send(std::move(call));
}

std::vector<GoneBroadcast::Call> GoneBroadcast::TakeReadyLocked() {
  std::vector<Call> ready;
  if (shut_down_) return ready;
  for (auto& [key, outbox] : outboxes_) {
    if (outbox.in_flight || outbox.retry_due || outbox.queued.empty()) continue;
    Call& call = ready.emplace_back();
    call.key = key;
    call.epoch = epochs_[key.first];
    call.batch.set_deployment(key.second);
    size_t n = std::min<size_t>(outbox.queued.size(), kMaxBatch);
    for (size_t i = 0; i < n; ++i) *call.batch.add_gone() = std::move(outbox.queued[i]);
    outbox.queued.erase(outbox.queued.begin(), outbox.queued.begin() + n);
    outbox.in_flight = true;
    ++in_flight_;
  }
  return ready;
}

void GoneBroadcast::Send(Call call) {
  NodeClient* client = clients_(call.key.first);
  if (client == nullptr) {
    ++call.epoch;  // stale: dropped, not retried
    Done(call.key, call.epoch, std::move(call.batch), absl::NotFoundError("unknown node"));
    return;
  }
  pb::GoneBatch sent = call.batch;
  client->Gone(sent, [this, call = std::move(call)](absl::Status status) mutable {
    Done(call.key, call.epoch, std::move(call.batch), status);
  });
}

void GoneBroadcast::Done(const Key& key, uint64_t epoch, pb::GoneBatch batch, const absl::Status& status) {
  std::vector<Call> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    cv_.notify_all();
    auto it = outboxes_.find(key);
    if (it == outboxes_.end()) return;  // shut down
    Outbox& outbox = it->second;
    outbox.in_flight = false;
    if (!status.ok() && !outbox.forgotten && epoch == epochs_[key.first]) {
      // The node is up and did not take them: again after the pause, first.
      outbox.queued.insert(outbox.queued.begin(), batch.gone().begin(), batch.gone().end());
      outbox.retry_due = true;
      timers_->After(retry_, [this, key] { Retry(key); });
      return;
    }
    if (outbox.queued.empty() || outbox.forgotten) {
      outboxes_.erase(it);
      return;
    }
    ready = TakeReadyLocked();
  }
  for (Call& call : ready) Send(std::move(call));
}

void GoneBroadcast::Retry(const Key& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = outboxes_.find(key);
    if (it == outboxes_.end()) return;
    it->second.retry_due = false;
    if (it->second.queued.empty() && !it->second.in_flight) {
      outboxes_.erase(it);  // dropped meanwhile (NodeDown)
      return;
    }
  }
  Flush();
}

void GoneBroadcast::NodeDown(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  ++epochs_[node];
  for (auto it = outboxes_.begin(); it != outboxes_.end();) {
    if (it->first.first != node) {
      ++it;
      continue;
    }
    it->second.queued.clear();
    if (it->second.in_flight || it->second.retry_due) {
      it->second.retry_due = false;  // its timer finds nothing to send
      ++it;
    } else {
      it = outboxes_.erase(it);
    }
  }
}

void GoneBroadcast::Forget(uint64_t deployment) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = outboxes_.begin(); it != outboxes_.end();) {
    if (it->first.second != deployment) {
      ++it;
    } else if (it->second.in_flight) {
      it->second.queued.clear();
      it->second.forgotten = true;
      ++it;
    } else {
      it = outboxes_.erase(it);
    }
  }
}

size_t GoneBroadcast::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

size_t GoneBroadcast::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [key, outbox] : outboxes_) n += outbox.queued.size();
  return n;
}

}  // namespace constellation::daemon::master
