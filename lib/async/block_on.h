#pragma once

// block_on: runs a Task from ordinary code and returns its result. The
// calling thread becomes the task's executor: it runs the task and every
// coroutine it awaits, and sleeps while all of them wait (on channels,
// timers, monitors). Many coroutines can wait at once on one thread (see
// when_all, when_any).
//
//   int sum = constellation::block_on(add(a, b));
//
// A block_on inside a coroutine blocks that coroutine's executor until it
// returns (the outer coroutines wait); prefer co_await there.

#include <utility>

#include "lib/async/executor.h"
#include "lib/async/task.h"

namespace constellation {

template <class T>
T block_on(Task<T> task) {
  async_internal::Executor executor;
  async_internal::Executor::Scope scope(&executor);
  auto handle = async_internal::TaskAccess<T>::Handle(task);
  handle.promise().MarkStarted();
  handle.resume();
  while (!handle.done()) executor.RunOnce();
  return handle.promise().Take();
}

}  // namespace constellation
