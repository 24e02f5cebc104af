#pragma once

// One libevent event_base driven by one background thread, and RAII handles
// for the events registered on it.
//
// Threading: Post() may be called from any thread; everything else (Event's
// methods, base()) only on the loop thread, i.e. from inside posted tasks and
// event callbacks. The destructor must not run on the loop thread; it stops the
// thread and drops tasks that were never run.

#include <event2/event.h>

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "lib/core/internal_only.h"
#include "lib/net/unique_fd.h"

namespace constellation::net {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs `task` on the loop thread soon. Any thread.
  void Post(std::function<void()> task);

  bool InLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }
  event_base* base() const { return base_; }

 private:
  void RunTasks();

  event_base* base_ = nullptr;
  UniqueFd wake_fd_;  // eventfd: written by Post, read by the loop
  event* wake_event_ = nullptr;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;  // guarded by mu_
  bool wake_pending_ = false;                 // guarded by mu_
  bool stopping_ = false;                     // loop thread only
  std::thread thread_;
};

// An event registration (fd readiness or a timer) that is cancelled and freed
// when the handle is destroyed. Loop thread only. The callback may destroy the
// Event that runs it only by deferring (post the deletion), as libevent still
// touches the event after the callback returns for persistent events.
class Event {
 public:
  using Callback = std::function<void(short what)>;
  // fd -1 makes a timer. `what` is EV_READ / EV_WRITE / EV_PERSIST flags.
  Event(EventLoop& loop, int fd, short what, Callback callback);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void Add();                         // fd events: wait for readiness
  void AddTimeout(absl::Duration d);  // timers (and fd events with a timeout)
  void Del();
  bool pending() const;

 private:
  static void Trampoline(evutil_socket_t fd, short what, void* self);
  event* event_;
  Callback callback_;
};

}  // namespace constellation::net
