#include "daemon/master/event_queue.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace constellation::daemon::master {
namespace {

bool IsOutputWithData(const v1::JobEvent& event) {
  return event.has_process() && event.process().has_output() && !event.process().output().data().empty();
}

// What an entry costs against the back-pressure bound.
uint64_t Size(const QueuedEvent& entry) {
  uint64_t size = 64 + entry.body.size();
  if (entry.mark) size += entry.mark->node.size() + entry.mark->incarnation.size();
  return size;
}

}  // namespace

std::string EventQueue::TruncatedWhy(uint64_t max_log_bytes) {
  std::string limit;
  if (max_log_bytes >= (1u << 20) && max_log_bytes % (1u << 20) == 0) {
    limit = absl::StrCat(max_log_bytes >> 20, " MiB");
  } else if (max_log_bytes >= 1024 && max_log_bytes % 1024 == 0) {
    limit = absl::StrCat(max_log_bytes >> 10, " KiB");
  } else {
    limit = absl::StrCat(max_log_bytes, " bytes");
  }
  return absl::StrCat("output beyond ", limit, " is not kept");
}

void EventQueue::AddJob(uint64_t job, const LogState& committed) {
  std::unique_lock<std::mutex> lock(mu_);
  jobs_.try_emplace(job, JobLog{committed, committed.seq});
}

void EventQueue::RemoveJob(uint64_t job) {
  std::unique_lock<std::mutex> lock(mu_);
  jobs_.erase(job);
  // Events queued for it since the delete's commit took the queue: dropped,
  // so that no row of a deleted job is written again. Their marks still count.
  auto kept = queue_.begin();
  for (QueuedEvent& entry : queue_) {
    uint64_t before = Size(entry);
    if (entry.job == job && entry.seq != 0) {
      entry.seq = 0;
      entry.body.clear();
      if (!entry.mark) {
        queued_bytes_ -= before;
        unsettled_bytes_ -= before;
        continue;
      }
      queued_bytes_ -= before - Size(entry);
      unsettled_bytes_ -= before - Size(entry);
    }
    *kept++ = std::move(entry);
  }
  queue_.erase(kept, queue_.end());
}

uint64_t EventQueue::Append(uint64_t job, v1::JobEvent event, std::optional<NodeMark> mark) {
  if (event.time_ms() == 0) event.set_time_ms(absl::ToUnixMillis(absl::Now()));
  event.clear_seq();                             // the seq is its own column
  std::string body = event.SerializeAsString();  // outside the lock: it may be large

  std::unique_lock<std::mutex> lock(mu_);
  AwaitRoom(lock);
  QueuedEvent entry{.job = job, .mark = std::move(mark)};
  auto it = jobs_.find(job);
  if (it == jobs_.end()) {  // never put, or deleted
    if (entry.mark) Push(std::move(entry));
    return 0;
  }
  LogState& log = it->second.queued;
  bool stored_as_given = true;
  if (IsOutputWithData(event) && log.bytes + body.size() > limits_.max_log_bytes_per_job) {
    stored_as_given = false;
    if (log.truncated) {
      if (entry.mark) Push(std::move(entry));
      return 0;
    }
    v1::JobEvent truncated;
    truncated.set_time_ms(event.time_ms());
    truncated.mutable_truncated()->set_dropped_bytes(event.process().output().data().size());
    truncated.mutable_truncated()->set_why(TruncatedWhy(limits_.max_log_bytes_per_job));
    body = truncated.SerializeAsString();
    entry.truncated = true;
    log.truncated = true;
  }
  entry.seq = ++log.seq;
  log.bytes += body.size();
  entry.body = std::move(body);
  uint64_t seq = entry.seq;
  Push(std::move(entry));
  return stored_as_given ? seq : 0;
}

void EventQueue::Mark(NodeMark mark) {
  std::unique_lock<std::mutex> lock(mu_);
  AwaitRoom(lock);
  Push(QueuedEvent{.mark = std::move(mark)});
}

void EventQueue::AwaitRoom(std::unique_lock<std::mutex>& lock) {
  // Back-pressure; the commit thread was woken at half the bound (Full()).
  while (unsettled_bytes_ >= limits_.max_queued_bytes && !stopped_) room_.wait(lock);
}

void EventQueue::Push(QueuedEvent entry) {
  const bool was_empty = queue_.empty();
  const bool was_full = Full();
  uint64_t size = Size(entry);
  queued_bytes_ += size;
  unsettled_bytes_ += size;
  queue_.push_back(std::move(entry));
  // The commit thread waits for the first event (to time it) and for a full
  // batch: only those wake it, not every event.
  if (was_empty || (!was_full && Full())) work_.notify_one();
}

Batch EventQueue::Take(bool paced) {
  std::unique_lock<std::mutex> lock(mu_);
  Batch batch;
  batch.entries.swap(queue_);  // O(1) under the lock that Append waits for
  batch.bytes = queued_bytes_;
  queued_bytes_ = 0;
  if (paced) last_taken_ = absl::Now();
  return batch;
}

std::vector<uint64_t> EventQueue::Committed(const Batch& batch) {
  std::unique_lock<std::mutex> lock(mu_);
  unsettled_bytes_ -= batch.bytes;
  room_.notify_all();
  std::set<uint64_t> advanced;
  for (const QueuedEvent& entry : batch.entries) {
    if (entry.seq == 0) continue;
    auto it = jobs_.find(entry.job);
    if (it == jobs_.end()) continue;  // deleted since
    it->second.committed_seq = std::max(it->second.committed_seq, entry.seq);
    advanced.insert(entry.job);
  }
  return std::vector<uint64_t>(advanced.begin(), advanced.end());
}

void EventQueue::Failed(Batch batch) {
  std::unique_lock<std::mutex> lock(mu_);
  queue_.insert(queue_.begin(), std::make_move_iterator(batch.entries.begin()),
                std::make_move_iterator(batch.entries.end()));
  queued_bytes_ += batch.bytes;
  work_.notify_one();
}

uint64_t EventQueue::CommittedSeq(uint64_t job) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(job);
  return it == jobs_.end() ? 0 : it->second.committed_seq;
}

bool EventQueue::Full() const {
  return queue_.size() >= limits_.commit_batch || queued_bytes_ >= limits_.max_queued_bytes / 2;
}

bool EventQueue::AwaitDue(absl::Duration interval) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    while (queue_.empty() && !stopped_) work_.wait(lock);
    if (stopped_) return true;
    const absl::Time due = DueLocked(interval);
    if (Full() || absl::Now() >= due) return false;
    WaitUntil(lock, due);  // then look again: it may also have been emptied by a Flush
  }
}

absl::Time EventQueue::NextDue(absl::Duration interval) {
  std::unique_lock<std::mutex> lock(mu_);
  return DueLocked(interval);
}

absl::Time EventQueue::DueLocked(absl::Duration interval) const {
  // absl::Now is the wall clock: if it stepped back since the last Take, wait
  // one interval, not the step.
  return std::min(last_taken_ + interval, absl::Now() + interval);
}

bool EventQueue::AwaitStopFor(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (!stopped_ && absl::Now() < deadline) WaitUntil(lock, deadline);
  return stopped_;
}

void EventQueue::WaitUntil(std::unique_lock<std::mutex>& lock, absl::Time deadline) {
  if (deadline >= absl::Now() + absl::Hours(24 * 365)) {  // far (or infinite): chrono would overflow
    work_.wait(lock);
  } else {
    work_.wait_until(lock, absl::ToChronoTime(deadline));
  }
}

void EventQueue::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  stopped_ = true;
  work_.notify_all();
  room_.notify_all();
}

}  // namespace constellation::daemon::master
