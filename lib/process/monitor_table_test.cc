// MonitorTable, MonitorSlot, Down and Monitor on fake verdicts: no processes.
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "lib/async/async.h"
#include "lib/net/select.h"
#include "lib/process/down.h"
#include "lib/process/monitor_slot.h"
#include "lib/process/monitor_table.h"
#include "lib/process/monitors.h"

namespace constellation {
namespace process_internal {

struct MonitorAccess {
  static Monitor Make(Pid pid, std::shared_ptr<MonitorSlot> slot) { return Monitor(pid, std::move(slot)); }
};

namespace {

Pid P(uint32_t n) { return Pid::FromIpv4(0x7f000001, 1000, n); }

pb::ProcessGone Exit(int code) {
  pb::ProcessGone gone;
  gone.mutable_exit()->set_code(code);
  return gone;
}

// A table whose watches and terminations are recorded.
struct Fixture {
  std::vector<Pid> asked;
  std::vector<Down> terminated;
  MonitorTable table{[this](const Pid& pid) { asked.push_back(pid); },
                     [this](const Down& down) { terminated.push_back(down); }};
};

TEST(DownTest, FromEachKindOfVerdict) {
  Down exited = DownFromGone(P(1), Exit(3));
  ASSERT_TRUE(std::holds_alternative<Exited>(exited.reason));
  EXPECT_EQ(std::get<Exited>(exited.reason).code, 3);
  EXPECT_TRUE(exited.abnormal());
  EXPECT_EQ(exited.to_string(), "process " + P(1).to_string() + " exited with code 3");
  EXPECT_FALSE(DownFromGone(P(1), Exit(0)).abnormal());

  pb::ProcessGone killed;
  killed.mutable_exit()->set_signal(9);
  Down signaled = DownFromGone(P(1), killed);
  ASSERT_TRUE(std::holds_alternative<Signaled>(signaled.reason));
  EXPECT_EQ(std::get<Signaled>(signaled.reason).signal, 9);
  EXPECT_EQ(signaled.to_string(), "process " + P(1).to_string() + " was killed by signal 9 (SIGKILL)");

  pb::ProcessGone oom;
  oom.mutable_exit()->set_signal(9);
  oom.mutable_exit()->set_memory_exceeded(true);
  oom.mutable_exit()->set_error("exceeded its memory limit of 64 MiB");
  Down out = DownFromGone(P(1), oom);
  EXPECT_TRUE(std::holds_alternative<OutOfMemory>(out.reason));
  EXPECT_EQ(out.to_string(),
            "process " + P(1).to_string() + " ran out of memory (exceeded its memory limit of 64 MiB)");

  pb::ProcessGone none;
  none.set_no_process(true);
  EXPECT_TRUE(std::holds_alternative<NoProcess>(DownFromGone(P(1), none).reason));
  EXPECT_TRUE(DownFromGone(P(1), none).abnormal());

  pb::ProcessGone lost;
  lost.set_node_lost(true);
  lost.mutable_exit()->set_error("node 10.0.0.2:7000 was lost");
  Down node = DownFromGone(P(1), lost);
  EXPECT_TRUE(std::holds_alternative<NodeLost>(node.reason));
  EXPECT_EQ(node.to_string(),
            "process " + P(1).to_string() + " is gone: its node was lost (node 10.0.0.2:7000 was lost)");
}

TEST(MonitorTableTest, FirstMonitorAsksOnceAndEveryMonitorGetsTheVerdict) {
  Fixture f;
  std::shared_ptr<MonitorSlot> a = f.table.Add(P(1), false);
  std::shared_ptr<MonitorSlot> b = f.table.Add(P(1), false);
  EXPECT_EQ(f.asked, std::vector<Pid>{P(1)});
  EXPECT_FALSE(a->Get().has_value());
  f.table.OnGone(DownFromGone(P(1), Exit(3)));
  ASSERT_TRUE(a->Get().has_value());
  ASSERT_TRUE(b->Get().has_value());
  EXPECT_EQ(std::get<Exited>(b->Get()->reason).code, 3);
  // Ready exactly once: the same Down, whatever comes later.
  f.table.OnGone(DownFromGone(P(1), Exit(5)));
  EXPECT_EQ(std::get<Exited>(a->Get()->reason).code, 3);
  EXPECT_TRUE(f.terminated.empty());
}

TEST(MonitorTableTest, AKnownVerdictIsReadyAtOnceWithoutAsking) {
  Fixture f;
  f.table.Watch(P(2));  // the data plane's peer
  f.table.Watch(P(2));
  EXPECT_EQ(f.asked, std::vector<Pid>{P(2)});
  f.table.OnGone(DownFromGone(P(2), Exit(0)));
  std::shared_ptr<MonitorSlot> slot = f.table.Add(P(2), false);
  ASSERT_TRUE(slot->Get().has_value());
  EXPECT_FALSE(slot->Get()->abnormal());
  f.table.Watch(P(2));
  EXPECT_EQ(f.asked, std::vector<Pid>{P(2)});
  // A monitor of a pid the data plane watches: one watch between them.
  f.table.Watch(P(3));
  f.table.Add(P(3), false);
  EXPECT_EQ(f.asked, (std::vector<Pid>{P(2), P(3)}));
}

TEST(MonitorTableTest, NullPidIsNoProcessAtOnce) {
  Fixture f;
  std::shared_ptr<MonitorSlot> slot = f.table.Add(Pid(), false);
  ASSERT_TRUE(slot->Get().has_value());
  EXPECT_TRUE(std::holds_alternative<NoProcess>(slot->Get()->reason));
  EXPECT_TRUE(f.asked.empty());
}

TEST(MonitorTableTest, LinkTerminatesOnAnAbnormalEndUnlessTrapped) {
  Fixture f;
  f.table.Add(P(1), true);
  f.table.OnGone(DownFromGone(P(1), Exit(0)));  // a normal end never terminates
  EXPECT_TRUE(f.terminated.empty());

  f.table.Add(P(2), true);
  f.table.OnGone(DownFromGone(P(2), Exit(3)));
  ASSERT_EQ(f.terminated.size(), 1u);
  EXPECT_EQ(f.terminated[0].pid, P(2));

  f.table.SetTrapExits(true);
  std::shared_ptr<MonitorSlot> trapped = f.table.Add(P(3), true);
  f.table.OnGone(DownFromGone(P(3), Exit(4)));
  EXPECT_EQ(f.terminated.size(), 1u);
  ASSERT_TRUE(trapped->Get().has_value());
  EXPECT_EQ(std::get<Exited>(trapped->Get()->reason).code, 4);

  // Linking a process known to have failed, exits no longer trapped.
  f.table.SetTrapExits(false);
  f.table.Add(P(3), true);
  ASSERT_EQ(f.terminated.size(), 2u);
  EXPECT_EQ(f.terminated[1].pid, P(3));
  // A monitor is not a link.
  f.table.Add(P(4), false);
  f.table.OnGone(DownFromGone(P(4), Exit(9)));
  EXPECT_EQ(f.terminated.size(), 2u);
}

TEST(MonitorTableTest, TerminationLineNamesTheProcessAndTheWayOut) {
  EXPECT_EQ(LinkTerminationLine(DownFromGone(P(1), Exit(3))),
            "constellation: terminating: linked process " + P(1).to_string() +
                " exited with code 3 (call trap_exits(true) to receive it as a Down instead)\n");
}

TEST(MonitorTest, WaitTryWaitAndWaitForFromAnotherThread) {
  auto slot = std::make_shared<MonitorSlot>();
  Monitor m = MonitorAccess::Make(P(1), slot);
  EXPECT_FALSE(m.try_wait().has_value());
  EXPECT_TRUE(absl::IsDeadlineExceeded(m.wait_for(absl::Milliseconds(1)).status()));
  std::thread setter([slot] { slot->Set(DownFromGone(P(1), Exit(3))); });
  Down down = m.wait();
  setter.join();
  EXPECT_EQ(std::get<Exited>(down.reason).code, 3);
  EXPECT_EQ(std::get<Exited>(m.wait().reason).code, 3);
  ASSERT_TRUE(m.wait_for(absl::ZeroDuration()).ok());
  Monitor moved = std::move(m);
  EXPECT_EQ(moved.try_wait()->pid, P(1));
}

TEST(MonitorTest, OnDownInSelect) {
  auto slot = std::make_shared<MonitorSlot>();
  Monitor m = MonitorAccess::Make(P(1), slot);
  int ran = 0;
  EXPECT_TRUE(absl::IsDeadlineExceeded(select({on_down(m, [&](Down) { ++ran; })}, absl::Milliseconds(1)).status()));
  std::thread setter([slot] { slot->Set(DownFromGone(P(1), Exit(7))); });
  Down got;
  absl::StatusOr<size_t> which = select({on_down(m, [&](Down d) {
    ++ran;
    got = std::move(d);
  })});
  setter.join();
  ASSERT_TRUE(which.ok());
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(std::get<Exited>(got.reason).code, 7);
}

Task<int> AwaitCode(const Monitor& m) {
  Down down = co_await m.async_wait();
  co_return std::get<Exited>(down.reason).code;
}

Task<int> SelectCode(const Monitor& m) {
  int code = -1;
  absl::StatusOr<size_t> which =
      co_await select_async(on_down(m, [&](Down d) { code = std::get<Exited>(d.reason).code; }));
  co_return which.ok() ? code : -2;
}

TEST(MonitorTest, AsyncWaitAndSelectAsync) {
  auto slot = std::make_shared<MonitorSlot>();
  Monitor m = MonitorAccess::Make(P(1), slot);
  std::thread setter([slot] { slot->Set(DownFromGone(P(1), Exit(6))); });
  EXPECT_EQ(block_on(AwaitCode(m)), 6);
  setter.join();
  EXPECT_EQ(block_on(AwaitCode(m)), 6);  // ready at once, again
  EXPECT_EQ(block_on(SelectCode(m)), 6);
}

TEST(MonitorTest, ManyMonitorsWaitOnOneThread) {
  std::vector<std::shared_ptr<MonitorSlot>> slots;
  std::vector<Monitor> monitors;
  std::vector<Task<int>> tasks;
  for (uint32_t i = 0; i < 32; ++i) {
    slots.push_back(std::make_shared<MonitorSlot>());
    monitors.push_back(MonitorAccess::Make(P(i), slots.back()));
  }
  for (const Monitor& m : monitors) tasks.push_back(AwaitCode(m));
  std::thread setter([&slots] {
    for (size_t i = 0; i < slots.size(); ++i) slots[i]->Set(DownFromGone(P(i), Exit(static_cast<int>(i))));
  });
  std::vector<int> codes = block_on(when_all(std::move(tasks)));
  setter.join();
  ASSERT_EQ(codes.size(), 32u);
  for (size_t i = 0; i < codes.size(); ++i) EXPECT_EQ(codes[i], static_cast<int>(i));
}

}  // namespace
}  // namespace process_internal
}  // namespace constellation
