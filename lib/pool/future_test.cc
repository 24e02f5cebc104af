// Future<R> and its shared state without processes: results set by hand
// (what the pool's dispatcher does) reach get(), try_get(), co_await and
// select; the first result wins.
#include "lib/pool/future.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include "lib/async/block_on.h"
#include "lib/async/select_async.h"
#include "lib/async/task.h"
#include "lib/async/when.h"
#include "lib/core/codec.h"

namespace constellation {
namespace {

using pool_internal::FutureState;

std::shared_ptr<FutureState> NewState() { return std::make_shared<FutureState>(); }

TEST(FutureTest, GetTryGetAndTheFirstResultWins) {
  auto state = NewState();
  Future<std::string> f(state);
  EXPECT_FALSE(f.try_get().has_value());
  EXPECT_FALSE(f.ready());
  state->Complete(encode(std::string("first")));
  state->Complete(encode(std::string("second")));
  ASSERT_TRUE(f.ready());
  EXPECT_EQ(f.get().value(), "first");
  EXPECT_EQ(f.try_get()->value(), "first");
  EXPECT_EQ(f.get().value(), "first");  // read again
}

TEST(FutureTest, ErrorsAndVoid) {
  auto failed = NewState();
  failed->Complete(absl::UnavailableError("gone"));
  EXPECT_EQ(Future<int>(failed).get().status(), absl::UnavailableError("gone"));
  EXPECT_EQ(Future<void>(failed).get(), absl::UnavailableError("gone"));
  auto done = NewState();
  done->Complete(std::string());
  EXPECT_TRUE(Future<void>(done).get().ok());
}

TEST(FutureTest, GetBlocksUntilAnotherThreadCompletes) {
  auto state = NewState();
  std::thread completer([state] { state->Complete(encode(42)); });
  EXPECT_EQ(Future<int>(state).get().value(), 42);
  completer.join();
}

Task<int> Await(Future<int> f) {
  absl::StatusOr<int> v = co_await f;
  co_return v.ok() ? *v : -1;
}

TEST(FutureTest, CoAwaitManyOnOneThread) {
  auto a = NewState(), b = NewState();
  a->Complete(encode(1));  // ready before the wait
  std::thread completer([b] { b->Complete(encode(2)); });
  auto [x, y] = block_on(when_all(Await(Future<int>(a)), Await(Future<int>(b))));
  completer.join();
  EXPECT_EQ(x, 1);
  EXPECT_EQ(y, 2);
}

TEST(FutureTest, DestroyingAWaitingTaskUnsubscribes) {
  auto never = NewState(), soon = NewState();
  std::thread completer([soon] { soon->Complete(encode(7)); });
  auto [which, value] = block_on(when_any(Await(Future<int>(never)), Await(Future<int>(soon))));
  completer.join();
  EXPECT_EQ(which, 1u);
  EXPECT_EQ(std::get<1>(value), 7);
  never->Complete(encode(8));  // fires nothing: the cancelled wait is gone
}

TEST(FutureTest, SelectAndSelectAsync) {
  auto state = NewState();
  Future<int> f(state);
  std::thread completer([state] { state->Complete(encode(5)); });
  int got = 0;
  EXPECT_EQ(select({on_result(f, [&](absl::StatusOr<int> v) { got = v.value_or(-1); })}).value(), 0u);
  completer.join();
  EXPECT_EQ(got, 5);
  auto later = NewState();
  auto wait = [](Future<int> f) -> Task<int> {
    int seen = 0;
    absl::StatusOr<size_t> which =
        co_await select_async(on_result(f, [&](absl::StatusOr<int> v) { seen = v.value_or(-1); }), absl::Seconds(60));
    co_return which.ok() ? seen : -1;
  };
  std::thread late([later] { later->Complete(encode(6)); });
  EXPECT_EQ(block_on(wait(Future<int>(later))), 6);
  late.join();
}

TEST(FutureDeathTest, ReadingAnEmptyFutureAborts) {
  EXPECT_DEATH(Future<int>().get().IgnoreError(), "default-constructed Future");
}

}  // namespace
}  // namespace constellation
