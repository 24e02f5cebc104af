#pragma once

// Executor: runs the coroutines of one thread (see block_on). Work reaches it
// as Runnables: a suspended wait that a Peer's Waiter fired (from the data
// plane's loop or another thread), or a timer that came due. The thread
// sleeps on a condition variable while there is nothing to run, so a
// waiting coroutine costs no thread and no polling: the data plane's own
// wake-up (net::Waiter, fired when a frame, room or an error arrives) makes
// it runnable.
//
// Ownership: block_on makes one on its stack; it must outlive every
// Runnable posted to it and every timer (each Wait removes itself when it is
// destroyed). Threading: Post and Unpost from any thread; everything else on
// the thread that runs it.

#include <deque>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lib/net/mutex.h"

namespace constellation::async_internal {

// Something the executor runs on its thread.
class Runnable {
 public:
  virtual void Run() = 0;

 protected:
  ~Runnable() = default;

 private:
  friend class Executor;
  bool queued_ = false;  // guarded by the executor's lock
};

// A suspended wait, as the executor sees it. A wait suspends without
// subscribing to what would fire it; before the thread sleeps, the executor
// either parks in it, when it is the only thing the thread waits for and it
// can block (a channel's recv or send, which then reads or writes the socket
// itself: a coroutine ping-pong costs what a blocking one does, with no hop
// through the data plane's loop thread), or arms it (subscribes it, then
// posts it once, so a change that came before the subscription is seen).
class Parkable : public Runnable {
 public:
  virtual bool CanPark() const = 0;
  // The executor's timers that are this wait's own (its deadline's): 0 or 1.
  virtual size_t OwnTimers() const = 0;
  // Completes the wait (blocking, until its deadline) and resumes its coroutine.
  virtual void Park() = 0;
  virtual bool Armed() const = 0;
  virtual void Arm() = 0;

 protected:
  ~Parkable() = default;

 private:
  friend class Executor;
  Parkable* prev_ = nullptr;  // the executor's list of suspended waits (owner thread)
  Parkable* next_ = nullptr;
  bool linked_ = false;
};

class Executor {
 public:
  using TimerId = std::multimap<absl::Time, Runnable*>::iterator;

  Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  // Aborts if work is still queued or timers set: a Wait outlived its task.
  ~Executor();

  // The executor running on this thread (inside block_on), or null.
  static Executor* Current();
  // Current(), or aborts with a message naming `what` (an await outside block_on).
  static Executor& CurrentOrDie(const char* what);

  // Makes it the thread's current executor for the scope's life.
  class Scope {
   public:
    explicit Scope(Executor* executor);
    ~Scope();

   private:
    Executor* previous_;
  };

  // Queues r to run once (posting it again while queued is one run). Any thread.
  void Post(Runnable* r) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes r out of the queue if it is there. Any thread.
  void Unpost(Runnable* r) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs r once `when` has come (owner thread).
  TimerId AddTimer(absl::Time when, Runnable* r);
  void CancelTimer(TimerId id);

  // Suspended waits (owner thread): a wait is listed from its suspension to
  // its completion or cancellation, the newest first (so those not yet armed
  // come first).
  void AddSuspended(Parkable* p);
  void RemoveSuspended(Parkable* p);

  // Runs what is queued and due; if nothing is, parks in the only suspended
  // wait (see Parkable) or arms the new ones and sleeps until something is
  // posted or a timer comes due, then runs it. Owner thread.
  void RunOnce() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Runnable* PopReady() ABSL_LOCKS_EXCLUDED(mu_);
  Runnable* PopDueTimer(absl::Time now);

  net::Mutex mu_;
  net::CondVar cv_;
  std::deque<Runnable*> ready_ ABSL_GUARDED_BY(mu_);
  bool sleeping_ ABSL_GUARDED_BY(mu_) = false;
  std::multimap<absl::Time, Runnable*> timers_;  // owner thread only
  Parkable* suspended_ = nullptr;                // owner thread only
  size_t suspended_count_ = 0;
};

}  // namespace constellation::async_internal
