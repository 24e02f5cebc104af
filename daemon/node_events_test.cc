// EventBuffer (issue 12, item 3): sequence numbers, acks, what an Attach
// replays, the inventory, and the memory bound with its dropped-output
// reports.
#include "daemon/node_events.h"

#include <vector>

#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::FromProto;
using internal::ToProto;

namespace {

constexpr char kInc[] = "0123456789abcdef0123456789abcdef";

Pid MakePid(uint16_t port) {
  Pid::Address addr{};
  addr[10] = addr[11] = 0xff;
  addr[12] = 127;
  addr[15] = 1;
  return Pid(addr, port, 99);
}

pb::ProcessEvent Output(const Pid& pid, const std::string& data, bool eof = false) {
  pb::ProcessEvent e;
  *e.mutable_pid() = ToProto(pid);
  e.mutable_output()->set_fd(1);
  e.mutable_output()->set_data(data);
  e.mutable_output()->set_eof(eof);
  return e;
}

pb::ProcessEvent Exit(const Pid& pid, int code) {
  pb::ProcessEvent e;
  *e.mutable_pid() = ToProto(pid);
  e.mutable_exit()->set_code(code);
  return e;
}

pb::ProcessEvent Spawn(const Pid& pid, const Pid& child) {
  pb::ProcessEvent e;
  *e.mutable_pid() = ToProto(pid);
  *e.mutable_spawn()->mutable_child() = ToProto(child);
  return e;
}

pb::RunningProcess Running(uint64_t deployment, const Pid& pid) {
  pb::RunningProcess p;
  p.set_deployment(deployment);
  *p.mutable_pid() = ToProto(pid);
  p.mutable_resources()->set_mem(1 << 20);
  return p;
}

// The seqs Next() yields after `after`, in order.
std::vector<uint64_t> SeqsAfter(const EventBuffer& buffer, uint64_t after) {
  std::vector<uint64_t> seqs;
  while (const pb::NodeEvent* e = buffer.Next(after)) {
    seqs.push_back(e->seq());
    after = e->seq();
  }
  return seqs;
}

TEST(NewIncarnation, Is128RandomBitsInHex) {
  std::string a = NewIncarnation(), b = NewIncarnation();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_NE(a, b);
}

TEST(EventBuffer, EventsAreNumberedFromOneWithoutGaps) {
  EventBuffer buffer(kInc, 1 << 20);
  Pid p = MakePid(1);
  EXPECT_EQ(buffer.Push(7, Output(p, "a")), 1u);
  EXPECT_EQ(buffer.Push(7, Output(p, "b")), 2u);
  EXPECT_EQ(buffer.Push(8, Exit(p, 0)), 3u);
  EXPECT_EQ(SeqsAfter(buffer, 0), (std::vector<uint64_t>{1, 2, 3}));
  const pb::NodeEvent* first = buffer.Next(0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->deployment(), 7u);
  EXPECT_EQ(first->event().output().data(), "a");
  EXPECT_EQ(first->dropped_bytes(), 0u);
}

TEST(EventBuffer, AnAckDropsEverythingUpToItAndOnlyGrows) {
  EventBuffer buffer(kInc, 1 << 20);
  Pid p = MakePid(1);
  for (int i = 0; i < 5; ++i) buffer.Push(7, Output(p, "x"));
  uint64_t used = buffer.used_bytes();
  buffer.Ack(kInc, 3);
  EXPECT_EQ(buffer.size(), 2u);
  EXPECT_LT(buffer.used_bytes(), used);
  EXPECT_EQ(SeqsAfter(buffer, 0), (std::vector<uint64_t>{4, 5}));
  buffer.Ack(kInc, 2);  // older: ignored
  EXPECT_EQ(buffer.acked(), 3u);
  EXPECT_EQ(SeqsAfter(buffer, 0), (std::vector<uint64_t>{4, 5}));
  buffer.Ack(kInc, 1000);  // beyond the last: the last
  EXPECT_EQ(buffer.acked(), 5u);
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.used_bytes(), 0u);
  EXPECT_EQ(buffer.Push(7, Output(p, "y")), 6u) << "seqs go on after an ack";
}

TEST(EventBuffer, AnAckForAnotherIncarnationIsIgnored) {
  EventBuffer buffer(kInc, 1 << 20);
  buffer.Push(7, Output(MakePid(1), "x"));
  buffer.Ack("ffffffffffffffffffffffffffffffff", 1);
  buffer.Ack("", 1);
  EXPECT_EQ(buffer.size(), 1u);
  EXPECT_EQ(buffer.acked(), 0u);
}

TEST(EventBuffer, ResumingTheSameIncarnationSendsOnlyLaterEventsAndAcksTheRest) {
  EventBuffer buffer(kInc, 1 << 20);
  for (int i = 0; i < 6; ++i) buffer.Push(7, Output(MakePid(1), "x"));
  uint64_t after = buffer.Resume(kInc, 4);
  EXPECT_EQ(after, 4u);
  EXPECT_EQ(SeqsAfter(buffer, after), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(buffer.acked(), 4u) << "what the master stored durably need not be kept";
}

TEST(EventBuffer, ResumingAnotherIncarnationSendsEverythingHeld) {
  EventBuffer buffer(kInc, 1 << 20);
  for (int i = 0; i < 6; ++i) buffer.Push(7, Output(MakePid(1), "x"));
  buffer.Ack(kInc, 2);
  uint64_t after = buffer.Resume("a master that knew an older daemon", 5);
  EXPECT_EQ(SeqsAfter(buffer, after), (std::vector<uint64_t>{3, 4, 5, 6}));
  after = buffer.Resume("", 0);  // a master that knows nothing
  EXPECT_EQ(SeqsAfter(buffer, after), (std::vector<uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(buffer.acked(), 2u);
}

TEST(EventBuffer, TheInventoryHoldsProcessesUntilTheirExitIsAcked) {
  EventBuffer buffer(kInc, 1 << 20);
  Pid a = MakePid(1), b = MakePid(2), c = MakePid(3);
  buffer.Launched(a, Running(7, a));
  buffer.Launched(b, Running(8, b));
  buffer.Launched(c, Running(8, c));
  buffer.Forget(c);  // its launch failed
  buffer.Push(7, Output(a, "hi"));
  uint64_t exit_seq = buffer.Push(7, Exit(a, 0));
  pb::NodeHello hello = buffer.Hello();
  EXPECT_EQ(hello.incarnation(), kInc);
  ASSERT_EQ(hello.processes_size(), 2);
  EXPECT_EQ(FromProto(hello.processes(0).pid()).value(), a);
  EXPECT_EQ(hello.processes(0).deployment(), 7u);
  EXPECT_EQ(hello.processes(0).resources().mem(), 1u << 20);
  EXPECT_TRUE(hello.processes(0).exited()) << "its exit is among the events that follow";
  EXPECT_EQ(FromProto(hello.processes(1).pid()).value(), b);
  EXPECT_FALSE(hello.processes(1).exited());
  buffer.Ack(kInc, exit_seq - 1);
  EXPECT_EQ(buffer.Hello().processes_size(), 2) << "its exit is not acked yet";
  buffer.Ack(kInc, exit_seq);
  hello = buffer.Hello();
  ASSERT_EQ(hello.processes_size(), 1);
  EXPECT_EQ(FromProto(hello.processes(0).pid()).value(), b);
}

TEST(EventBuffer, WhenFullOutputIsDroppedAndTheNextKeptEventSaysHowMuch) {
  const uint64_t capacity = 8 * 1024;
  EventBuffer buffer(kInc, capacity);
  Pid p = MakePid(1), q = MakePid(2);
  std::string line(100, 'o');
  uint64_t kept = 0, dropped = 0;
  for (int i = 0; i < 200; ++i) {
    if (buffer.Push(7, Output(p, line)) != 0) {
      ++kept;
    } else {
      dropped += line.size();
    }
  }
  ASSERT_GT(dropped, 0u);
  EXPECT_LE(buffer.used_bytes(), capacity);
  EXPECT_EQ(buffer.unreported_drops().at(7), dropped);
  // Never dropped, even when full: spawns, exits, eof; the first of
  // deployment 7 carries its loss, deployment 8 has lost nothing.
  uint64_t spawn = buffer.Push(8, Spawn(q, p));
  uint64_t eof = buffer.Push(7, Output(p, "", /*eof=*/true));
  uint64_t exit = buffer.Push(7, Exit(p, 0));
  ASSERT_NE(spawn, 0u);
  ASSERT_NE(eof, 0u);
  ASSERT_NE(exit, 0u);
  EXPECT_EQ(buffer.Next(spawn - 1)->dropped_bytes(), 0u);
  EXPECT_EQ(buffer.Next(eof - 1)->dropped_bytes(), dropped);
  EXPECT_EQ(buffer.Next(exit - 1)->dropped_bytes(), 0u) << "reported once";
  EXPECT_TRUE(buffer.unreported_drops().empty());
  EXPECT_EQ(SeqsAfter(buffer, 0).size(), kept + 3) << "dropped events take no seq: no gaps";
}

TEST(EventBuffer, AnAckThatMakesRoomAddsAMarkerForOutputDroppedBefore) {
  const uint64_t capacity = 4 * 1024;
  EventBuffer buffer(kInc, capacity);
  Pid p = MakePid(1);
  std::string line(500, 'o');
  uint64_t dropped = 0;
  for (int i = 0; i < 20; ++i) dropped += buffer.Push(9, Output(p, line)) == 0 ? line.size() : 0;
  ASSERT_GT(dropped, 0u);
  uint64_t last = buffer.last_seq();
  EXPECT_FALSE(buffer.Ack(kInc, 0));
  EXPECT_TRUE(buffer.Ack(kInc, last));
  const pb::NodeEvent* marker = buffer.Next(last);
  ASSERT_NE(marker, nullptr);
  EXPECT_EQ(marker->seq(), last + 1);
  EXPECT_EQ(marker->deployment(), 9u);
  EXPECT_FALSE(marker->has_event());
  EXPECT_EQ(marker->dropped_bytes(), dropped);
  EXPECT_TRUE(buffer.unreported_drops().empty());
  EXPECT_NE(buffer.Push(9, Output(p, line)), 0u) << "output is kept again once there is room";
  EXPECT_EQ(buffer.Next(last + 1)->dropped_bytes(), 0u);
}

TEST(EventBuffer, TheBoundHoldsAgainstOneHugeOutput) {
  EventBuffer buffer(kInc, 64 * 1024);
  EXPECT_EQ(buffer.Push(1, Output(MakePid(1), std::string(1 << 20, 'x'))), 0u);
  EXPECT_EQ(buffer.used_bytes(), 0u);
  EXPECT_EQ(buffer.unreported_drops().at(1), 1u << 20);
}

TEST(EventBuffer, NextSkipsWhatWasAckedMeanwhile) {
  EventBuffer buffer(kInc, 1 << 20);
  for (int i = 0; i < 4; ++i) buffer.Push(7, Output(MakePid(1), "x"));
  buffer.Ack(kInc, 3);
  ASSERT_NE(buffer.Next(1), nullptr);
  EXPECT_EQ(buffer.Next(1)->seq(), 4u);
  EXPECT_EQ(buffer.Next(4), nullptr);
  EXPECT_EQ(buffer.Next(100), nullptr);
}

}  // namespace
}  // namespace constellation::daemon
