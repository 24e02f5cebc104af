// Peers that die or are gone, and API misuse: recv from a child killed by
// SIGKILL (idle or mid-stream), send to a child that has exited, and channels
// to pid() itself or a second live channel to one pid (abort with a message).
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

TEST(PeerGone, RecvFromChildKilledBySigkill) {
  RunResult run = RunChannelScenario({"sigkill"});
  ASSERT_FALSE(run.exit.timed_out);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 2u) << run.Dump();
  EXPECT_EQ(tree[0]->ExitString(), "code 0") << run.Dump();
  EXPECT_EQ(tree[1]->ExitString(), "signal SIGKILL") << run.Dump();
  EXPECT_EQ(run.exit.ShellCode(), 128 + 9);
  EXPECT_THAT(tree[0]->out, HasSubstr("RESULT sigkill: recv and send report kUnavailable\n"));
}

TEST(PeerGone, RecvFromChildKilledMidStream) {
  RunResult run = RunChannelScenario({"sigkill_streaming"});
  ASSERT_FALSE(run.exit.timed_out);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 2u) << run.Dump();
  EXPECT_EQ(tree[0]->ExitString(), "code 0") << run.Dump();
  EXPECT_EQ(tree[1]->ExitString(), "signal SIGKILL") << run.Dump();
  EXPECT_EQ(run.exit.ShellCode(), 128 + 9);
  ExpectResult(run, "sigkill mid-stream: ");
}

TEST(PeerGone, SendToExitedChildFails) {
  RunResult run = RunChannelScenario({"send_to_exited"});
  ExpectAllExitedZero(run, 2);
  ExpectResult(run, "send to exited child failed with kUnavailable after ");
}

TEST(PeerGone, ChannelsToPidsOfNoLiveProcessFail) {
  RunResult run = RunChannelScenario({"bogus_pid"});
  ExpectAllExitedZero(run, 3);
  ExpectResult(run, "bogus pids report kUnavailable");
}

TEST(Hostile, ConnectionsFromOutsideTheProgramAreDroppedWithALogLine) {
  RunResult run = RunChannelScenario({"hostile"});
  ExpectAllExitedZero(run, 3);
  ExpectResult(run, "attacker made 8 hostile connections");
  ExpectResult(run, "hostile: survived 8 attacks");
  // One line per dropped connection on the attacked process's stderr (the
  // port scan's connect-and-close is silent); its other channels carried on.
  const std::string& err = run.trace.Root().err;
  size_t lines = 0;
  for (size_t at = err.find("constellation: dropped connection"); at != std::string::npos;
       at = err.find("constellation: dropped connection", at + 1)) {
    ++lines;
  }
  EXPECT_GE(lines, 6u) << err;
  EXPECT_LE(lines, 7u) << err;
  EXPECT_THAT(err, HasSubstr("bad magic"));
  EXPECT_THAT(err, HasSubstr("in the middle of a hello"));
  EXPECT_THAT(err, HasSubstr("the dialer's proof is wrong"));
  EXPECT_THAT(err, HasSubstr("10737418240"));
  EXPECT_THAT(err, HasSubstr("not this process"));
  EXPECT_THAT(err, HasSubstr("in the middle of a frame"));
}

TEST(Misuse, SenderToSelfAbortsInRoot) {
  RunResult run = RunChannelScenario({"misuse", "self_sender_root"});
  ASSERT_FALSE(run.exit.timed_out);
  ASSERT_EQ(run.trace.processes.size(), 1u) << run.Dump();
  EXPECT_EQ(run.trace.Root().ExitString(), "signal SIGABRT") << run.Dump();
  EXPECT_EQ(run.exit.ShellCode(), 128 + 6);
  EXPECT_THAT(run.trace.Root().err, HasSubstr("a Sender<int> to pid() itself"));
  EXPECT_THAT(run.trace.Root().err, HasSubstr("cannot open a channel to itself"));
  EXPECT_THAT(run.trace.Root().err, ::testing::Not(HasSubstr("FAIL")));
}

TEST(Misuse, ReceiverToSelfAbortsInChild) {
  RunResult run = RunChannelScenario({"misuse", "self_receiver_child"});
  ASSERT_FALSE(run.exit.timed_out);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 2u) << run.Dump();
  EXPECT_EQ(tree[0]->ExitString(), "code 0") << run.Dump();
  EXPECT_EQ(tree[1]->ExitString(), "signal SIGABRT") << run.Dump();
  EXPECT_EQ(run.exit.ShellCode(), 128 + 6);
  EXPECT_THAT(tree[1]->err, HasSubstr("a Receiver<std::"));
  EXPECT_THAT(tree[1]->err, HasSubstr("to pid() itself"));
  EXPECT_THAT(tree[0]->out, HasSubstr("RESULT parent saw the child go\n"));
}

TEST(Misuse, SecondLiveSenderAborts) {
  RunResult run = RunChannelScenario({"misuse", "second_sender_child"});
  ASSERT_FALSE(run.exit.timed_out);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 2u) << run.Dump();
  EXPECT_EQ(tree[0]->ExitString(), "code 0") << run.Dump();
  EXPECT_EQ(tree[1]->ExitString(), "signal SIGABRT") << run.Dump();
  EXPECT_EQ(run.exit.ShellCode(), 128 + 6);
  EXPECT_THAT(tree[1]->err, HasSubstr(absl::StrCat("a second live Sender to process ", run.trace.root)));
  EXPECT_THAT(tree[0]->out, HasSubstr("RESULT parent saw the child go\n"));
}

TEST(Misuse, SecondLiveReceiverAbortsInRoot) {
  RunResult run = RunChannelScenario({"misuse", "second_receiver_root"});
  ASSERT_FALSE(run.exit.timed_out);
  std::vector<const ProcessRecord*> tree = run.trace.Tree();
  ASSERT_EQ(tree.size(), 2u) << run.Dump();
  EXPECT_EQ(tree[0]->ExitString(), "signal SIGABRT") << run.Dump();
  EXPECT_EQ(tree[1]->ExitString(), "code 0") << run.Dump();
  EXPECT_EQ(run.exit.ShellCode(), 128 + 6);
  EXPECT_THAT(tree[0]->err, HasSubstr(absl::StrCat("a second live Receiver to process ", tree[1]->pid)));
  EXPECT_THAT(tree[1]->out, HasSubstr("RESULT child saw the parent go\n"));
}

}  // namespace
}  // namespace constellation::testing
