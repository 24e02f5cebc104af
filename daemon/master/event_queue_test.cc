#include "daemon/master/event_queue.h"

#include <thread>

#include "gtest/gtest.h"

namespace constellation::daemon::master {
namespace {

v1::JobEvent Output(const std::string& data) {
  v1::JobEvent event;
  event.set_time_ms(1);
  event.mutable_process()->mutable_output()->set_data(data);
  return event;
}

std::vector<uint64_t> Seqs(const Batch& batch) {
  std::vector<uint64_t> seqs;
  for (const QueuedEvent& entry : batch.entries) seqs.push_back(entry.seq);
  return seqs;
}

TEST(EventQueueTest, AFailedBatchIsTakenAgainFirst) {
  EventQueue queue({});
  queue.AddJob(1, LogState{.seq = 10});
  EXPECT_EQ(queue.Append(1, Output("a"), std::nullopt), 11u);
  EXPECT_EQ(queue.Append(1, Output("b"), std::nullopt), 12u);
  Batch batch = queue.Take();
  EXPECT_EQ(queue.Append(1, Output("c"), std::nullopt), 13u);
  queue.Failed(std::move(batch));
  EXPECT_EQ(queue.CommittedSeq(1), 10u);
  Batch again = queue.Take();
  EXPECT_EQ(Seqs(again), (std::vector<uint64_t>{11, 12, 13}));
  EXPECT_EQ(queue.Committed(again), (std::vector<uint64_t>{1}));
  EXPECT_EQ(queue.CommittedSeq(1), 13u);
}

TEST(EventQueueTest, RemovingAJobDropsItsQueuedEventsButKeepsTheirMarks) {
  EventQueue queue({});
  queue.AddJob(1, {});
  queue.AddJob(2, {});
  queue.Append(1, Output("a"), std::nullopt);
  queue.Append(1, Output("b"), NodeMark{"n1", "i", 5});
  queue.Append(2, Output("c"), std::nullopt);
  queue.RemoveJob(1);
  EXPECT_EQ(queue.Append(1, Output("d"), std::nullopt), 0u);
  Batch batch = queue.Take();
  ASSERT_EQ(batch.entries.size(), 2u);
  EXPECT_EQ(batch.entries[0].seq, 0u);  // the mark alone
  ASSERT_TRUE(batch.entries[0].mark.has_value());
  EXPECT_EQ(batch.entries[0].mark->seq, 5u);
  EXPECT_EQ(batch.entries[1].job, 2u);
  EXPECT_EQ(queue.Committed(batch), (std::vector<uint64_t>{2}));
}

TEST(EventQueueTest, AppendWaitsForRoomAndGoesOnAfterACommit) {
  EventQueue queue({.max_queued_bytes = 1000});
  queue.AddJob(1, {});
  const std::string data(600, 'x');
  EXPECT_EQ(queue.Append(1, Output(data), std::nullopt), 1u);
  EXPECT_EQ(queue.Append(1, Output(data), std::nullopt), 2u);  // over the bound now
  EXPECT_FALSE(queue.AwaitDue(absl::Hours(1)));                // due at once: more than half the bound
  Batch batch = queue.Take();
  uint64_t third = 0;
  std::thread appender([&] { third = queue.Append(1, Output(data), std::nullopt); });
  queue.Committed(batch);  // makes room, whether the appender waits yet or not
  appender.join();
  EXPECT_EQ(third, 3u);
}

TEST(EventQueueTest, AnEventAfterAQuietSpellIsDueAtOnceAndTheNextAfterTheInterval) {
  EventQueue queue({}, absl::InfinitePast());  // nothing committed for ever
  queue.AddJob(1, {});
  EXPECT_EQ(queue.Append(1, Output("a"), std::nullopt), 1u);
  EXPECT_FALSE(queue.AwaitDue(absl::Hours(1)));  // due at once: no wait for the interval
  const absl::Time taken = absl::Now();
  queue.Committed(queue.Take());
  EXPECT_EQ(queue.Append(1, Output("b"), std::nullopt), 2u);
  EXPECT_GE(queue.NextDue(absl::Hours(1)), taken + absl::Hours(1));  // a stream: one commit per interval
}

// A synchronous write (a process stored before its spawn is answered) takes
// what is queued but does not start the interval: the event after it (the
// spawned process's first line) is due at once after a quiet spell.
TEST(EventQueueTest, ASynchronousWritesTakeDoesNotHoldTheNextEvent) {
  EventQueue queue({}, absl::InfinitePast());
  queue.AddJob(1, {});
  EXPECT_EQ(queue.Append(1, Output("a"), std::nullopt), 1u);
  queue.Committed(queue.Take(/*paced=*/false));
  EXPECT_EQ(queue.Append(1, Output("b"), std::nullopt), 2u);
  EXPECT_FALSE(queue.AwaitDue(absl::Hours(1)));  // due at once
  queue.Committed(queue.Take());
  EXPECT_EQ(queue.Append(1, Output("c"), std::nullopt), 3u);
  EXPECT_GE(queue.NextDue(absl::Hours(1)), absl::Now() + absl::Minutes(59)) << "the thread's own commit paces";
}

TEST(EventQueueTest, StopEndsTheWaits) {
  EventQueue queue({});
  std::thread stopper([&] { queue.Stop(); });
  EXPECT_TRUE(queue.AwaitDue(absl::InfiniteDuration()));
  EXPECT_TRUE(queue.AwaitStopFor(absl::InfiniteDuration()));
  stopper.join();
}

}  // namespace
}  // namespace constellation::daemon::master
