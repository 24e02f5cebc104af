#pragma once

// when_all and when_any: run several Tasks concurrently on the current
// thread's executor (each runs until it waits, then the next starts).
//
//   auto [x, y] = co_await when_all(fetch(a), fetch(b));          // both results
//   auto [which, value] = co_await when_any(fetch(a), fetch(b));  // the first
//
// when_all completes when every task has, with their results in order (a
// Task<void>'s result is std::monostate). when_any completes with the first
// task to complete: its index and its result (a std::variant of the tasks'
// result types, holding alternative `index`); the others are cancelled, that
// is destroyed where they wait (see task.h), and none of their operations
// happens after that. Vector forms take tasks of one type. An exception from
// a task is rethrown once all (when_all) or the first (when_any) completed.

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "lib/async/task.h"

namespace constellation {
namespace async_internal {

// A Task<void>'s result in the combinators' tuples and variants.
template <class T>
using ResultOf = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// What the children of one when_all / when_any share with their parent.
struct JoinState {
  static constexpr size_t kNone = static_cast<size_t>(-1);
  size_t remaining = 0;
  bool first_wins = false;  // when_any
  bool armed = false;       // the parent is suspended, waiting for it
  size_t winner = kNone;
  std::exception_ptr exception;
  std::coroutine_handle<> parent;

  // A child completed: the coroutine to run next.
  std::coroutine_handle<> ChildDone(size_t index) {
    if (first_wins) {
      if (winner != kNone) return std::noop_coroutine();
      winner = index;
      return armed ? parent : std::noop_coroutine();
    }
    return (--remaining == 0 && armed) ? parent : std::noop_coroutine();
  }
};

// A coroutine that runs one child Task and tells the JoinState when done.
class Child {
 public:
  struct promise_type {
    JoinState* state = nullptr;
    size_t index = 0;
    Child get_return_object() noexcept { return Child(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        return self.promise().state->ChildDone(self.promise().index);
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept {
      if (!state->exception) state->exception = std::current_exception();
    }
  };
  Child(Child&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Child& operator=(Child&&) = delete;
  ~Child() {
    if (handle_) handle_.destroy();
  }
  void Start(JoinState* state, size_t index) {
    handle_.promise().state = state;
    handle_.promise().index = index;
    handle_.resume();
  }

 private:
  explicit Child(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  std::coroutine_handle<promise_type> handle_;
};

template <class T, class Slot>
Child RunChild(Task<T> task, Slot* slot) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    slot->emplace();
  } else {
    slot->emplace(co_await std::move(task));
  }
}

// Suspends the parent while the children run.
template <class Children>
class JoinAwaiter {
 public:
  JoinAwaiter(JoinState* state, Children* children) : state_(state), children_(children) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> parent) {
    state_->parent = parent;
    state_->remaining = children_->size();
    for (size_t i = 0; i < children_->size(); ++i) {
      (*children_)[i].Start(state_, i);
      if (state_->first_wins && state_->winner != JoinState::kNone) return false;
    }
    state_->armed = true;
    return state_->first_wins ? state_->winner == JoinState::kNone : state_->remaining != 0;
  }
  void await_resume() {
    if (state_->exception) std::rethrow_exception(state_->exception);
  }

 private:
  JoinState* state_;
  Children* children_;
};

template <class Tuple, size_t... I>
Task<std::tuple<typename std::tuple_element_t<I, Tuple>::value_type...>> WhenAllOf(Tuple tasks,
                                                                                   std::index_sequence<I...>) {
  using Slots = std::tuple<std::optional<typename std::tuple_element_t<I, Tuple>::value_type>...>;
  Slots slots;
  JoinState state;
  std::array<Child, sizeof...(I)> children{RunChild(std::move(std::get<I>(tasks)), &std::get<I>(slots))...};
  co_await JoinAwaiter<std::array<Child, sizeof...(I)>>(&state, &children);
  co_return std::tuple<typename std::tuple_element_t<I, Tuple>::value_type...>(std::move(*std::get<I>(slots))...);
}

template <class Variant, size_t I, class Slots>
void TakeWinner(size_t winner, Slots& slots, std::optional<Variant>* out) {
  if constexpr (I < std::tuple_size_v<Slots>) {
    if (winner == I) {
      out->emplace(std::in_place_index<I>, std::move(*std::get<I>(slots)));
    } else {
      TakeWinner<Variant, I + 1>(winner, slots, out);
    }
  }
}

template <class Tuple, size_t... I>
Task<std::pair<size_t, std::variant<typename std::tuple_element_t<I, Tuple>::value_type...>>> WhenAnyOf(
    Tuple tasks, std::index_sequence<I...>) {
  using Variant = std::variant<typename std::tuple_element_t<I, Tuple>::value_type...>;
  using Slots = std::tuple<std::optional<typename std::tuple_element_t<I, Tuple>::value_type>...>;
  Slots slots;
  JoinState state;
  state.first_wins = true;
  std::optional<Variant> result;
  {
    std::array<Child, sizeof...(I)> children{RunChild(std::move(std::get<I>(tasks)), &std::get<I>(slots))...};
    co_await JoinAwaiter<std::array<Child, sizeof...(I)>>(&state, &children);
  }  // the losers are cancelled here
  TakeWinner<Variant, 0>(state.winner, slots, &result);
  co_return std::pair<size_t, Variant>(state.winner, std::move(*result));
}

// Task<void> becomes Task<monostate> so results fit tuples and variants.
template <class T>
Task<ResultOf<T>> AsResult(Task<T> task) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    co_return std::monostate{};
  } else {
    co_return co_await std::move(task);
  }
}

}  // namespace async_internal

template <class... Ts>
Task<std::tuple<async_internal::ResultOf<Ts>...>> when_all(Task<Ts>... tasks) {
  return async_internal::WhenAllOf(std::make_tuple(async_internal::AsResult(std::move(tasks))...),
                                   std::index_sequence_for<Ts...>{});
}

template <class... Ts>
Task<std::pair<size_t, std::variant<async_internal::ResultOf<Ts>...>>> when_any(Task<Ts>... tasks) {
  return async_internal::WhenAnyOf(std::make_tuple(async_internal::AsResult(std::move(tasks))...),
                                   std::index_sequence_for<Ts...>{});
}

// Every task's result, in order.
template <class T>
Task<std::vector<async_internal::ResultOf<T>>> when_all(std::vector<Task<T>> tasks) {
  std::vector<std::optional<async_internal::ResultOf<T>>> slots(tasks.size());
  async_internal::JoinState state;
  std::vector<async_internal::Child> children;
  children.reserve(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    children.push_back(async_internal::RunChild(async_internal::AsResult(std::move(tasks[i])), &slots[i]));
  }
  co_await async_internal::JoinAwaiter<std::vector<async_internal::Child>>(&state, &children);
  std::vector<async_internal::ResultOf<T>> results;
  results.reserve(slots.size());
  for (auto& slot : slots) results.push_back(std::move(*slot));
  co_return results;
}

// The first task to complete: its index and result; the others are cancelled.
template <class T>
Task<std::pair<size_t, async_internal::ResultOf<T>>> when_any(std::vector<Task<T>> tasks) {
  std::vector<std::optional<async_internal::ResultOf<T>>> slots(tasks.size());
  async_internal::JoinState state;
  state.first_wins = true;
  {
    std::vector<async_internal::Child> children;
    children.reserve(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      children.push_back(async_internal::RunChild(async_internal::AsResult(std::move(tasks[i])), &slots[i]));
    }
    co_await async_internal::JoinAwaiter<std::vector<async_internal::Child>>(&state, &children);
  }
  co_return std::pair<size_t, async_internal::ResultOf<T>>(state.winner, std::move(*slots[state.winner]));
}

}  // namespace constellation
