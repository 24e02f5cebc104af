#include "daemon/node_grace.h"

#include "daemon/log/log.h"

namespace constellation::daemon {

ThreadAlarm::ThreadAlarm() : thread_([this] { Run(); }) {}

ThreadAlarm::~ThreadAlarm() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    fire_ = nullptr;
  }
  cv_.notify_all();
  thread_.join();
}

void ThreadAlarm::Set(absl::Duration after, std::function<void()> fire) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    fire_ = std::move(fire);
    deadline_ = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(after);
  }
  cv_.notify_all();
}

void ThreadAlarm::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    fire_ = nullptr;
  }
  cv_.notify_all();
}

void ThreadAlarm::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!fire_) {
      cv_.wait(lock);
      continue;
    }
    if (std::chrono::steady_clock::now() < deadline_) {
      // Woken early by Set, Cancel or the destructor: the loop looks again.
      cv_.wait_until(lock, deadline_);
      continue;
    }
    std::function<void()> fire = std::move(fire_);
    fire_ = nullptr;
    // Unlocked while it runs: the callback may Set or Cancel this alarm.
    lock.unlock();
    fire();
    lock.lock();
  }
}

MasterGrace::MasterGrace(absl::Duration grace, std::unique_ptr<Alarm> alarm, std::function<void()> expire)
    : grace_(grace), alarm_(std::move(alarm)), expire_(std::move(expire)) {}

MasterGrace::~MasterGrace() {
  // Unlocked: a callback running now takes the lock; the alarm waits for it.
  alarm_->Cancel();
  alarm_.reset();
}

void MasterGrace::Attached() {
  std::lock_guard<std::mutex> lock(mu_);
  ++epoch_;
  attached_ = true;
  expired_ = false;
  alarm_->Cancel();
}

void MasterGrace::Detached(bool leaving) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!attached_) return;  // already counting (or expired)
  attached_ = false;
  uint64_t epoch = ++epoch_;
  if (grace_ <= absl::ZeroDuration()) {
    expired_ = true;
    expire_();
    return;
  }
  if (leaving) {
    LogInfo("node", "left the master (draining)");
  } else {
    LogWarning("node", "the master is gone; keeping its processes for %s", absl::FormatDuration(grace_));
  }
  alarm_->Set(grace_, [this, epoch] { Expire(epoch); });
}

void MasterGrace::Expire(uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (epoch != epoch_ || attached_) return;  // a master came back meanwhile
  LogWarning("node", "no master for %s: killing its processes", absl::FormatDuration(grace_));
  expired_ = true;
  expire_();
}

bool MasterGrace::expired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return expired_;
}

}  // namespace constellation::daemon
