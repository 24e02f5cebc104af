#include "daemon/master/commit_notifier.h"

#include <cstdio>

namespace constellation::daemon::master {

void Subscription::Notify() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fn_) fn_();
}

void Subscription::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  fn_ = nullptr;
}

CommitNotifier::CommitNotifier(NodeSet* nodes) : nodes_(nodes), thread_([this] { Loop(); }) {}

CommitNotifier::~CommitNotifier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void CommitNotifier::OnCommit(const std::vector<uint64_t>& jobs, const std::vector<NodeMark>& marks) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.insert(jobs.begin(), jobs.end());
    for (const NodeMark& mark : marks) {
      NodeMark& latest = marks_[mark.node];
      if (latest.incarnation != mark.incarnation || latest.seq < mark.seq) latest = mark;
    }
  }
  cv_.notify_all();
}

void CommitNotifier::Poke(uint64_t job) { OnCommit({job}, {}); }

std::shared_ptr<Subscription> CommitNotifier::Subscribe(uint64_t job, std::function<void()> fn) {
  auto subscription = std::make_shared<Subscription>(job, std::move(fn));
  std::lock_guard<std::mutex> lock(mu_);
  // Forget the watchers that went away, so the map stays as large as the live ones.
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    it = it->second.expired() ? watchers_.erase(it) : std::next(it);
  }
  watchers_.emplace(job, subscription);
  return subscription;
}

void CommitNotifier::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty() || !marks_.empty(); });
    if (stopping_) return;
    std::set<uint64_t> jobs = std::exchange(jobs_, {});
    std::map<std::string, NodeMark> marks = std::exchange(marks_, {});
    std::vector<std::shared_ptr<Subscription>> to_notify;
    for (uint64_t job : jobs) {
      auto [begin, end] = watchers_.equal_range(job);
      for (auto it = begin; it != end; ++it) {
        if (std::shared_ptr<Subscription> live = it->second.lock()) to_notify.push_back(std::move(live));
      }
    }
    lock.unlock();
    for (const auto& subscription : to_notify) subscription->Notify();
    for (const auto& [addr, mark] : marks) {
      NodeClient* node = nodes_->client(addr);
      if (node == nullptr) continue;
      pb::AckRequest ack;
      ack.set_incarnation(mark.incarnation);
      ack.set_seq(mark.seq);
      // A failed ack only means the node keeps the events longer: the next one covers them.
      absl::Status acked = node->Ack(ack);
      (void)acked;
    }
    to_notify.clear();  // drop the references before taking the lock again
    lock.lock();
  }
}

}  // namespace constellation::daemon::master
