#include "daemon/master/timers.h"

namespace constellation::daemon::master {

RealTimers::RealTimers() : thread_([this] { Loop(); }) {}

RealTimers::~RealTimers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    due_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

void RealTimers::At(absl::Time when, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    due_.emplace(when, std::move(fn));
  }
  cv_.notify_all();
}

void RealTimers::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (due_.empty()) {
      cv_.wait(lock);
      continue;
    }
    absl::Time next = due_.begin()->first;
    if (absl::Now() < next) {
      cv_.wait_until(lock, absl::ToChronoTime(next));
      continue;
    }
    std::function<void()> fn = std::move(due_.begin()->second);
    due_.erase(due_.begin());
    lock.unlock();
    fn();
    lock.lock();
  }
}

absl::Time FakeTimers::Now() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

void FakeTimers::At(absl::Time when, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  due_.emplace(when, std::move(fn));
}

void FakeTimers::Advance(absl::Duration by) {
  std::unique_lock<std::mutex> lock(mu_);
  absl::Time until = now_ + by;
  while (!due_.empty() && due_.begin()->first <= until) {
    now_ = std::max(now_, due_.begin()->first);
    std::function<void()> fn = std::move(due_.begin()->second);
    due_.erase(due_.begin());
    lock.unlock();
    fn();
    lock.lock();
  }
  now_ = until;
}

size_t FakeTimers::pending() {
  std::lock_guard<std::mutex> lock(mu_);
  return due_.size();
}

}  // namespace constellation::daemon::master
