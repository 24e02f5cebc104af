// Channels under pauses and limits (issue 13, docs/channels.md "Failure
// semantics"): a peer stopped longer than the handshake bound is slow, not
// dead, and loses nothing; a process that exits with data queued to a
// stopped peer says so and fails; with `ulimit -n 1024` and up to 1,000 live
// peers, spawns succeed or fail clearly and no live peer is declared gone.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

TEST(Liveness, APeerPausedPastTheHandshakeBoundIsSlowNotDead) {
  RunResult run = RunChannelScenario({"paused_peer"}, absl::Seconds(120));
  ASSERT_FALSE(run.exit.timed_out) << run.Dump();
  ASSERT_EQ(run.trace.processes.size(), 4u) << run.Dump();
  ExpectResult(run, "dialer: every send to the paused peer succeeded and was acknowledged");
  std::string paused = ExpectResult(run, "paused peer got 1 2 3 from the dialer; ");
  ExpectResult(run, "paused for 12s; both ends carried on");
  // The flooder exited with 4 MiB queued to the stopped peer: after the exit
  // flush's bound it named the peer and the bytes, and its exit is a failure.
  std::vector<const ProcessRecord*> flooder = run.trace.WithStdoutContaining("RESULT flooder returns");
  ASSERT_EQ(flooder.size(), 1u);
  EXPECT_THAT(flooder[0]->err, HasSubstr("bytes of channel data to process "));
  EXPECT_THAT(flooder[0]->err, HasSubstr("were not delivered: not delivered within 10s"));
  EXPECT_EQ(flooder[0]->code, 74) << flooder[0]->ExitString();
  // The paused peer got a prefix of the flood in order, then the flooder's end with its reason.
  EXPECT_THAT(paused, HasSubstr("exited with code 74"));
  for (const std::string& pid : run.trace.order) {
    const ProcessRecord& p = run.trace.processes.at(pid);
    if (&p == flooder[0]) continue;
    EXPECT_TRUE(p.ExitedZero()) << pid << ": " << p.ExitString() << "\n" << run.Dump();
    EXPECT_THAT(p.err, ::testing::Not(HasSubstr("FAIL"))) << run.Dump();
  }
}

TEST(Liveness, RunningOutOfFdsNeverDeclaresALivePeerGone) {
  // Under the sanitizers each process is several times bigger: fewer of them,
  // with a limit as tight for their number.
  const std::string children = kSanitized ? "60" : "1000";
  const std::string nofile = kSanitized ? "96" : "1024";
  RunResult run = RunChannelScenario({"fd_limit", children, nofile}, absl::Seconds(240));
  ASSERT_FALSE(run.exit.timed_out) << run.Dump();
  std::string line = ExpectResult(run, "fd_limit: ");
  EXPECT_THAT(line, HasSubstr("none was declared gone"));
  for (const std::string& pid : run.trace.order) {
    const ProcessRecord& p = run.trace.processes.at(pid);
    EXPECT_TRUE(p.ExitedZero()) << pid << ": " << p.ExitString() << "\n" << p.err;
  }
  EXPECT_EQ(run.exit.code, 0);
  // Spawning either reached the count or stopped with a clear error.
  if (line.find("spawning stopped: none") == std::string::npos) {
    EXPECT_THAT(line, ::testing::AnyOf(HasSubstr("RESOURCE_EXHAUSTED"), HasSubstr("Too many open files")));
  }
  std::cerr << line << "\n";
}

}  // namespace
}  // namespace constellation::testing
