#include "lib/net/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace constellation::net {

EventLoop::EventLoop() {
  base_ = event_base_new();
  if (base_ == nullptr) {
    std::fprintf(stderr, "constellation: event_base_new failed\n");
    std::abort();
  }
  wake_fd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_.valid()) {
    std::fprintf(stderr, "constellation: eventfd failed: %s\n", std::strerror(errno));
    std::abort();
  }
  wake_event_ = event_new(
      base_, wake_fd_.get(), EV_READ | EV_PERSIST,
      [](evutil_socket_t, short, void* self) { static_cast<EventLoop*>(self)->RunTasks(); }, this);
  event_add(wake_event_, nullptr);
  thread_ = std::thread([this] {
    while (!stopping_) event_base_loop(base_, EVLOOP_ONCE);
  });
}

EventLoop::~EventLoop() {
  Post([this] { stopping_ = true; });
  thread_.join();
  event_free(wake_event_);
  event_base_free(base_);
  wake_fd_.reset();
}

void EventLoop::Post(std::function<void()> task) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (wake) {
    uint64_t one = 1;
    // Cannot fail short of a full counter (2^64 posts); EAGAIN would still leave it readable.
    ssize_t ignored = write(wake_fd_.get(), &one, sizeof(one));
    (void)ignored;
  }
}

void EventLoop::RunTasks() {
  uint64_t count;
  ssize_t ignored = read(wake_fd_.get(), &count, sizeof(count));
  (void)ignored;
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(tasks_);
    wake_pending_ = false;
  }
  for (auto& task : tasks) task();
}

Event::Event(EventLoop& loop, int fd, short what, Callback callback) : callback_(std::move(callback)) {
  event_ = event_new(loop.base(), fd, what, &Event::Trampoline, this);
  if (event_ == nullptr) {
    std::fprintf(stderr, "constellation: event_new failed\n");
    std::abort();
  }
}

Event::~Event() { event_free(event_); }

void Event::Add() { event_add(event_, nullptr); }

void Event::AddTimeout(absl::Duration d) {
  timeval tv = absl::ToTimeval(d);
  event_add(event_, &tv);
}

void Event::Del() { event_del(event_); }

bool Event::pending() const { return event_pending(event_, EV_READ | EV_WRITE | EV_TIMEOUT, nullptr) != 0; }

void Event::Trampoline(evutil_socket_t, short what, void* self) { static_cast<Event*>(self)->callback_(what); }

}  // namespace constellation::net
