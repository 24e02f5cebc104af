// Issue 12, item 4: cdeploy as a client of the job API, on the loopback
// cluster. A detached job is found again by its id (status, list, logs,
// logs -f, delete); a running one is cancelled from another cdeploy while a
// third follows it; `nodes` lists the nodes; unknown jobs are one-line
// errors; the attached run keeps working (the other cluster tests use it
// throughout).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

std::string Programs() { return RunfilePath("tests/cluster/cluster_programs"); }

class JobsCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new Cluster(ThreeNodeLoopback()); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->ok()) << cluster_->Describe(); }

  // cdeploy <verb> ADDR --tls=... <args...>
  static CommandResult Cdeploy(const std::string& verb, std::vector<std::string> args) {
    std::vector<std::string> argv = {CdeployPath(), verb, cluster_->bridge_addr(), cluster_->ClientTlsFlag()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60));
  }

  // Submits `args` of cluster_programs detached; returns the job's id.
  static std::string SubmitDetached(const std::string& binary, std::vector<std::string> program_args,
                                    std::vector<std::string> options = {}) {
    std::vector<std::string> args = {"--detach"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(binary);
    args.push_back("--");
    args.insert(args.end(), program_args.begin(), program_args.end());
    CommandResult r = Cdeploy("submit", args);
    EXPECT_EQ(r.code, 0) << r.error;
    EXPECT_THAT(r.output, MatchesRegex("[0-9]+\n")) << r.error;
    return std::string(absl::StripSuffix(r.output, "\n"));
  }

  static Cluster* cluster_;
};

Cluster* JobsCli::cluster_ = nullptr;

void ExpectOneLineError(const CommandResult& r, const std::string& what) {
  EXPECT_EQ(r.code, 2) << what << ": " << r.output << r.error;
  EXPECT_EQ(r.output, "") << what;
  std::vector<std::string> lines = Lines(r.error);
  ASSERT_THAT(lines, SizeIs(1)) << what << ": want a one-line error, got:\n" << r.error;
  EXPECT_THAT(lines[0], StartsWith("cdeploy: ")) << what;
}

TEST_F(JobsCli, ADetachedJobIsFoundAgainByItsId) {
  std::string id = SubmitDetached(Programs(), {"count", "5"}, {"--label=test=detached", "--label=round=1"});
  ASSERT_FALSE(id.empty());

  // logs -f: the whole output as local mode prints it, then the job's exit code.
  CommandResult follow = Cdeploy("logs", {"-f", id, "--format=json"});
  EXPECT_EQ(follow.code, 0) << follow.error;
  Trace trace = ParseTrace(Lines(follow.output));
  EXPECT_THAT(trace.errors, IsEmpty()) << follow.output;
  EXPECT_EQ(trace.Root().out, "line 1\nline 2\nline 3\nline 4\nline 5\n");

  // logs without -f: what is stored, in the human format.
  CommandResult logs = Cdeploy("logs", {id});
  EXPECT_EQ(logs.code, 0) << logs.error;
  EXPECT_THAT(logs.output, AllOf(HasSubstr("   line 1\n"), HasSubstr("   line 5\n"), HasSubstr("   exited\n")));

  CommandResult json = Cdeploy("status", {id, "--format=json"});
  EXPECT_EQ(json.code, 0) << json.error;
  EXPECT_THAT(Lines(json.output), SizeIs(1));
  EXPECT_THAT(json.output, AllOf(HasSubstr("\"id\":\"" + id + "\""), HasSubstr("\"state\":\"JOB_STATE_SUCCEEDED\""),
                                 HasSubstr("\"exit_code\":0"), HasSubstr("\"name\":\"cluster_programs\"")));
  CommandResult human = Cdeploy("status", {id});
  EXPECT_EQ(human.code, 0) << human.error;
  EXPECT_THAT(human.output, AllOf(HasSubstr("job:      " + id + "\n"), HasSubstr("state:    succeeded (exit code 0)\n"),
                                  HasSubstr("labels:   round=1,test=detached\n"), HasSubstr("processes:\n")));

  // --from: nothing after the last event.
  std::string last_seq = json.output.substr(json.output.find("\"last_seq\":\"") + 12);
  last_seq = last_seq.substr(0, last_seq.find('"'));
  CommandResult rest = Cdeploy("logs", {"--from=" + last_seq, id, "--format=json"});
  EXPECT_EQ(rest.code, 0) << rest.error;
  EXPECT_EQ(rest.output, "") << "after seq " << last_seq;

  CommandResult list = Cdeploy("list", {"--label=test=detached", "--format=json"});
  EXPECT_EQ(list.code, 0) << list.error;
  EXPECT_THAT(Lines(list.output), ElementsAre(HasSubstr("\"id\":\"" + id + "\"")));
  CommandResult table = Cdeploy("list", {"--label=round=1"});
  EXPECT_EQ(table.code, 0) << table.error;
  EXPECT_THAT(Lines(table.output), ElementsAre(StartsWith("JOB"), AllOf(HasSubstr(id), HasSubstr("cluster_programs"),
                                                                        HasSubstr("succeeded"))));
  CommandResult running = Cdeploy("list", {"--label=round=1", "--state=running", "--state=pending"});
  EXPECT_EQ(running.code, 0) << running.error;
  EXPECT_THAT(Lines(running.output), ElementsAre(StartsWith("JOB"))) << "it is not running";

  CommandResult deleted = Cdeploy("delete", {id});
  EXPECT_EQ(deleted.code, 0) << deleted.error;
  EXPECT_EQ(deleted.output, "job " + id + " deleted\n");
  ExpectOneLineError(Cdeploy("status", {id}), "status of a deleted job");
  CommandResult gone = Cdeploy("list", {"--label=test=detached", "--format=json"});
  EXPECT_EQ(gone.output, "");
}

TEST_F(JobsCli, CancelEndsARunningJobItsFollowerSeesTheEnd) {
  std::string id = SubmitDetached(ScenarioPath(), {"print_then_sleep"});  // a child sleeps until killed
  ASSERT_FALSE(id.empty());
  RunOptions run;
  run.args = {"logs", cluster_->bridge_addr(), "-f", id, "--format=json", cluster_->ClientTlsFlag()};
  run.format = std::nullopt;
  run.timeout = absl::Seconds(120);
  Program follower(CdeployPath(), run);
  EventReader reader(&follower);
  ASSERT_TRUE(reader.ReadUntil([&](const Event& e) { return e.type == Event::kOutput && e.data == "ready\n"; }))
      << follower.stdout_text() << follower.stderr_text();

  ExpectOneLineError(Cdeploy("delete", {id}), "delete of a running job");
  CommandResult cancel = Cdeploy("cancel", {id, "--grace=0"});
  EXPECT_EQ(cancel.code, 0) << cancel.error;
  EXPECT_THAT(cancel.output, HasSubstr("job " + id));

  ExitStatus exit = follower.Wait();
  EXPECT_TRUE(exit.exited && exit.code != 0) << exit.ToString() << follower.stderr_text();
  EXPECT_THAT(follower.stderr_text(), HasSubstr("job " + id + " was cancelled"));
  EXPECT_THAT(Cdeploy("status", {id, "--format=json"}).output, HasSubstr("\"state\":\"JOB_STATE_CANCELLED\""));
  for (size_t i = 0; i < cluster_->size(); ++i) {
    EXPECT_THAT(cluster_->node(i).WaitLaunchedGone(absl::Seconds(10)), IsEmpty()) << "node " << i;
  }
  // Idempotent; and now it can be deleted.
  EXPECT_EQ(Cdeploy("cancel", {id}).code, 0);
  EXPECT_EQ(Cdeploy("delete", {id}).code, 0);
}

TEST_F(JobsCli, NodesListsEveryNode) {
  CommandResult json = Cdeploy("nodes", {});  // stdout is no terminal: JSON lines
  EXPECT_EQ(json.code, 0) << json.error;
  std::vector<std::string> lines = Lines(json.output);
  ASSERT_THAT(lines, SizeIs(cluster_->size())) << json.output;
  for (size_t i = 0; i < cluster_->size(); ++i) {
    EXPECT_THAT(json.output, HasSubstr("\"addr\":\"" + cluster_->node_addr(i) + "\"")) << json.output;
  }
  for (const std::string& line : lines) {
    EXPECT_THAT(line, HasSubstr("\"state\":\"up\""));
    EXPECT_THAT(line, HasSubstr("\"source\":\"config\""));
  }
  CommandResult table = Cdeploy("nodes", {"--format=table"});
  EXPECT_EQ(table.code, 0) << table.error;
  std::vector<std::string> rows = Lines(table.output);
  ASSERT_THAT(rows, SizeIs(cluster_->size() + 1)) << table.output;
  EXPECT_THAT(rows[0], MatchesRegex("NODE +SOURCE +STATE +MEM +CPU +FREE MEM +FREE CPU +PROCESSES"));
  EXPECT_THAT(table.output, HasSubstr("2 GiB"));
}

TEST_F(JobsCli, UnknownJobsAreOneLineErrors) {
  for (const char* verb : {"status", "logs", "cancel", "delete"}) {
    ExpectOneLineError(Cdeploy(verb, {"987654321"}), verb);
  }
  ExpectOneLineError(Cdeploy("logs", {"-f", "987654321"}), "logs -f");
}

TEST_F(JobsCli, TheMasterFromTheEnvironment) {
  CommandResult r = RunCommand({"env", "CONSTELLATION_MASTER=" + cluster_->bridge_addr(), CdeployPath(), "nodes",
                                "--format=json", cluster_->ClientTlsFlag()});
  EXPECT_EQ(r.code, 0) << r.error;
  EXPECT_THAT(Lines(r.output), SizeIs(cluster_->size()));
}

TEST_F(JobsCli, AttachedRunWithStdinAndSubmitWithoutDetach) {
  DeployOptions options;
  options.args = {"count", "4", "2"};
  options.stdin_data = "go\n";
  RunResult r = cluster_->Deploy(Programs(), options);
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.Dump();
  EXPECT_EQ(r.trace.Root().out, "line 1\nline 2\nline 3\nline 4\n");

  // submit without --detach is the attached run.
  CommandResult attached =
      Cdeploy("submit", {"--label=test=attached", "--format=json", Programs(), "--", "count", "2"});
  EXPECT_EQ(attached.code, 0) << attached.error;
  EXPECT_EQ(ParseTrace(Lines(attached.output)).Root().out, "line 1\nline 2\n");
  CommandResult failing = Cdeploy("submit", {"--format=json", ScenarioPath(), "--", "exit1"});
  EXPECT_EQ(failing.code, 1) << failing.error;
}

// A master that stays away longer than --reconnect-timeout: the attached run
// gives up with one line and exit code 2 (a restart within it is the
// master-restart test's).
TEST(JobsCliReconnect, GivesUpAfterTheReconnectTimeout) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  RunOptions run;
  run.args = {cluster.bridge_addr(),
              cluster.ClientTlsFlag(),
              "--format=json",
              "--reconnect-timeout=2s",
              Programs(),
              "--",
              "count",
              "3",
              "2"};  // waits for stdin after line 2
  run.format = std::nullopt;
  run.close_stdin = false;
  run.timeout = absl::Seconds(120);
  Program cdeploy(CdeployPath(), run);
  EventReader reader(&cdeploy);
  // Lines 1 and 2 may come in one output event or two.
  ASSERT_TRUE(reader.ReadUntil([&](const Event&) { return absl::StrContains(reader.out[reader.root], "line 2\n"); }))
      << cdeploy.stdout_text() << cdeploy.stderr_text();
  cluster.master().Crash();
  ExitStatus exit = cdeploy.Wait();
  EXPECT_EQ(exit.ToString(), "exit code 2") << cdeploy.stderr_text();
  std::vector<std::string> err = Lines(cdeploy.stderr_text());
  ASSERT_THAT(err, SizeIs(1)) << cdeploy.stderr_text();
  EXPECT_THAT(err[0], AllOf(StartsWith("cdeploy: lost the master at " + cluster.bridge_addr() + " while following job"),
                            HasSubstr("no answer for 2s")));
}

}  // namespace
}  // namespace constellation::testing
