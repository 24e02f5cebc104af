// Issue 12, item 3: a master restart loses no running job. The master is
// SIGKILLed while a job runs and started again at the same addresses with the
// same state directory; the nodes keep the job's processes for their grace,
// the new master takes them back, and the job finishes with its output whole:
// every line exactly once, in order, also for the client that stayed
// attached through the restart.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAreArray;
using ::testing::IsSupersetOf;

std::string Programs() { return RunfilePath("tests/cluster/cluster_programs"); }

std::vector<std::string> Numbered(int n) {
  std::vector<std::string> lines;
  for (int i = 1; i <= n; ++i) lines.push_back(absl::StrCat("line ", i));
  return lines;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines;
}

TEST(MasterRestart, AnAttachedJobFinishesWholeAcrossAMasterCrash) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  DeployOptions options;
  options.args = {"count", "40", "20"};  // 20 lines, then waits for stdin, then 20 more
  options.close_stdin = false;
  std::unique_ptr<Program> run = cluster.StartDeploy(Programs(), options);
  EventReader reader(run.get());
  ASSERT_TRUE(reader.ReadUntil([&](const Event&) {
    return !reader.root.empty() && absl::StrContains(reader.out[reader.root], "line 20\n");
  })) << run->stdout_text()
      << run->stderr_text() << cluster.Describe();
  std::vector<pid_t> before = cluster.LaunchedAnywhere();
  ASSERT_FALSE(before.empty());

  cluster.CrashMaster();
  ASSERT_TRUE(cluster.RestartMaster()) << cluster.Describe();
  // Superset: the deployment's zygote may still be making its spare.
  EXPECT_THAT(cluster.LaunchedAnywhere(), IsSupersetOf(before))
      << "the nodes kept the job's processes through the restart";

  run->WriteStdin("go\n");  // reaches the root through the new master
  run->CloseStdin();
  ExitStatus exit = run->Wait();
  EXPECT_EQ(exit.ToString(), "exit code 0") << run->stderr_text() << cluster.Describe();
  EventReader rest(run.get());
  rest.ReadUntil([](const Event&) { return false; });
  std::string root = reader.root;
  std::string all = reader.out[root] + rest.out[root];
  EXPECT_THAT(Lines(all), ElementsAreArray(Numbered(40))) << run->stdout_text();
}

// A restarted master knows every job of before: finished ones with their
// logs, and running ones, which it follows to their end.
TEST(MasterRestart, EveryJobIsListedAndServedAfterARestart) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  auto cdeploy = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {CdeployPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60));
  };
  CommandResult finished =
      cdeploy({"submit", cluster.bridge_addr(), "--detach", cluster.ClientTlsFlag(), Programs(), "--", "count", "5"});
  ASSERT_EQ(finished.code, 0) << finished.error;
  std::string done_id(absl::StripAsciiWhitespace(finished.output));
  CommandResult followed = cdeploy({"logs", cluster.bridge_addr(), "-f", done_id, cluster.ClientTlsFlag()});
  ASSERT_EQ(followed.code, 0) << followed.error;
  CommandResult running = cdeploy({"submit", cluster.bridge_addr(), "--detach", cluster.ClientTlsFlag(), Programs(),
                                   "--", "count", "8", "4"});  // waits for stdin, which is EOF: goes on at once
  ASSERT_EQ(running.code, 0) << running.error;
  std::string running_id(absl::StripAsciiWhitespace(running.output));

  cluster.CrashMaster();
  ASSERT_TRUE(cluster.RestartMaster()) << cluster.Describe();

  CommandResult list = cdeploy({"list", cluster.bridge_addr(), "--format=json", cluster.ClientTlsFlag()});
  ASSERT_EQ(list.code, 0) << list.error;
  std::vector<std::string> jobs = Lines(list.output);
  ASSERT_THAT(jobs, ::testing::SizeIs(2)) << list.output;
  EXPECT_THAT(list.output, ::testing::HasSubstr("\"id\":\"" + done_id + "\",")) << list.output;
  EXPECT_THAT(list.output, ::testing::HasSubstr("\"id\":\"" + running_id + "\",")) << list.output;
  CommandResult log = cdeploy({"logs", cluster.bridge_addr(), done_id, cluster.ClientTlsFlag()});
  EXPECT_EQ(log.code, 0) << log.error;
  EXPECT_EQ(log.output, followed.output) << "the same log as before the restart";
  CommandResult rest = cdeploy({"logs", cluster.bridge_addr(), "-f", running_id, cluster.ClientTlsFlag()});
  EXPECT_EQ(rest.code, 0) << rest.error;
}

}  // namespace
}  // namespace constellation::testing
