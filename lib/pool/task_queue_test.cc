// TaskQueue without processes: idle waiters take tasks in order, closing
// drains before answering "none", and leftovers fail when it is destroyed.
// RunTaskMessage runs a task in this process as a worker would.
#include "lib/pool/task_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lib/async/block_on.h"
#include "lib/async/task.h"
#include "lib/async/when.h"
#include "lib/pool/future.h"
#include "lib/pool/task_runner.h"
#include "lib/pool/worker.h"

namespace constellation::pool_internal {
namespace {

PendingTask Tagged(const std::string& tag) {
  PendingTask task;
  task.message.args = tag;
  task.future = std::make_shared<FutureState>();
  return task;
}

// Takes tasks until the queue says none; returns their tags.
Task<std::vector<std::string>> Drain(TaskQueue* queue) {
  std::vector<std::string> tags;
  for (;;) {
    std::optional<PendingTask> task = co_await queue->NextTask();
    if (!task.has_value()) break;
    tags.push_back(task->message.args);
  }
  co_return tags;
}

TEST(TaskQueueTest, TasksInOrderThenNoneOnceClosed) {
  TaskQueue queue;
  queue.Push(Tagged("a"));
  std::thread producer([&queue] {
    queue.Push(Tagged("b"));
    queue.Push(Tagged("c"));
    queue.Close();
  });
  std::vector<std::string> tags = block_on(Drain(&queue));
  producer.join();
  EXPECT_EQ(tags, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(TaskQueueTest, TwoIdleWaitersShareTheTasks) {
  TaskQueue queue;
  std::thread producer([&queue] {
    for (int i = 0; i < 100; ++i) queue.Push(Tagged(std::to_string(i)));
    queue.Close();
  });
  auto [one, two] = block_on(when_all(Drain(&queue), Drain(&queue)));
  producer.join();
  EXPECT_EQ(one.size() + two.size(), 100u);
}

TEST(TaskQueueTest, LeftoversFailWhenDestroyed) {
  auto queue = std::make_unique<TaskQueue>();
  PendingTask task = Tagged("never");
  Future<int> f(task.future);
  queue->Push(std::move(task));
  queue.reset();
  EXPECT_TRUE(absl::IsCancelled(f.get().status())) << f.get().status();
}

std::string Repeat(std::string s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(RunTaskMessageTest, DecodesCallsAndEncodes) {
  using Fp = std::string (*)(std::string, int);
  auto runner = process_internal::LocateCode(reinterpret_cast<const void*>(&RunTask<Fp>));
  auto fn = process_internal::LocateCode(reinterpret_cast<const void*>(&Repeat));
  ASSERT_TRUE(runner.ok() && fn.ok());
  ResultMessage ok = RunTaskMessage(MakeTaskMessage(*runner, *fn, encode(std::tuple<std::string, int>("ab", 3))));
  EXPECT_EQ(decode<std::string>(ToResult(ok).value()).value(), "ababab");
  ResultMessage damaged = RunTaskMessage(MakeTaskMessage(*runner, *fn, "\x01"));
  EXPECT_TRUE(absl::IsInvalidArgument(ToResult(damaged).status())) << ToResult(damaged).status();
  TaskMessage nowhere = MakeTaskMessage(*runner, *fn, "");
  nowhere.fn_module = "/no/such/module.so";
  EXPECT_TRUE(absl::IsNotFound(ToResult(RunTaskMessage(nowhere)).status()));
}

}  // namespace
}  // namespace constellation::pool_internal
