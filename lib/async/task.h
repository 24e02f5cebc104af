#pragma once

// Task<T>: a coroutine that produces a T. Lazy: it starts when it is
// co_awaited (from another coroutine) or run with block_on (block_on.h),
// and then runs on that thread's executor until it suspends on a wait
// (a channel, a timer, a monitor) or completes.
//
//   Task<int> add(Receiver<int>& a, Receiver<int>& b) {
//     absl::StatusOr<int> x = co_await a.async_recv();
//     absl::StatusOr<int> y = co_await b.async_recv();
//     co_return (x.ok() ? *x : 0) + (y.ok() ? *y : 0);
//   }
//
// Move-only; awaited once. Cancel-on-destroy: destroying a Task that has not
// completed destroys its coroutine where it is suspended: the destructors of
// its locals run, and the wait it is suspended on is unregistered (a value
// not yet taken stays in the channel for the next receive; a send not yet
// queued is not sent). Never destroy a Task from inside itself. An exception
// that escapes the coroutine is rethrown by the co_await (or block_on) that
// awaits it.

#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <utility>

namespace constellation {

template <class T = void>
class Task;

namespace async_internal {

template <class T>
struct TaskAccess;

class PromiseBase {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> done) noexcept {
      std::coroutine_handle<> next = done.promise().continuation_;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  // The coroutine that awaits this one; aborts on a second await.
  void SetContinuation(std::coroutine_handle<> awaiting) {
    if (continuation_ || started_) {
      std::fprintf(stderr, "constellation: a Task was awaited twice (a Task is awaited once)\n");
      std::abort();
    }
    continuation_ = awaiting;
    started_ = true;
  }
  void MarkStarted() { SetContinuation(nullptr); }
  void RethrowIfFailed() {
    if (exception_) std::rethrow_exception(std::exchange(exception_, nullptr));
  }

 private:
  std::coroutine_handle<> continuation_;
  std::exception_ptr exception_;
  bool started_ = false;
};

template <class T>
class Promise : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }
  T Take() {
    RethrowIfFailed();
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class Promise<void> : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void Take() { RethrowIfFailed(); }
};

}  // namespace async_internal

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = async_internal::Promise<T>;
  using value_type = T;

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      Reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~Task() { Reset(); }

  // False for a moved-from Task.
  bool valid() const { return static_cast<bool>(handle_); }

  struct Awaiter {
    std::coroutine_handle<promise_type> handle;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) {
      handle.promise().SetContinuation(awaiting);
      return handle;  // start it; it resumes `awaiting` when done
    }
    T await_resume() { return handle.promise().Take(); }
  };
  Awaiter operator co_await() && {
    RequireValid();
    return Awaiter{handle_};
  }

 private:
  friend class async_internal::Promise<T>;
  friend struct async_internal::TaskAccess<T>;
  explicit Task(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  void Reset() {
    if (handle_) handle_.destroy();
    handle_ = nullptr;
  }
  void RequireValid() const {
    if (!handle_) {
      std::fprintf(stderr, "constellation: co_await on a moved-from Task\n");
      std::abort();
    }
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace async_internal {

template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}

inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// For block_on and the combinators: the Task's coroutine.
template <class T>
struct TaskAccess {
  static std::coroutine_handle<Promise<T>> Handle(Task<T>& task) {
    task.RequireValid();
    return task.handle_;
  }
};

}  // namespace async_internal
}  // namespace constellation
