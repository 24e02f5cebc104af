// Issue 11, item 3 (daemon hardening), the parts cdeploy owns: a "label" that
// is a shell command runs nothing (cdeploy runs bazel with an argument
// vector and refuses what is not a label), and the environment cdeploy
// forwards to the cluster is an allow-list unless --env-all.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- label injection --------------------------------------------------------------------------

TEST(CdeployLabel, AShellCommandInALabelRunsNothing) {
  std::string dir = MakeTempDir("label");
  std::string owned = dir + "/owned.txt";
  for (const std::string& label :
       {"//x;touch " + owned + ";#", "//x:$(touch " + owned + ")", "//x:`touch " + owned + "`", "//x|touch " + owned}) {
    // No bridge is needed: the label is refused before anything runs.
    CommandResult r = RunCommand({CdeployPath(), "127.0.0.1:1", label});
    EXPECT_EQ(r.code, 2) << label << "\n" << r.error;
    EXPECT_THAT(r.error, HasSubstr("is not a Bazel label")) << label;
    EXPECT_NE(access(owned.c_str(), F_OK), 0) << label << " ran a shell command";
  }
}

// ---- environment allow-list -------------------------------------------------------------------

class CdeployEnv : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions options;
    options.nodes = {{"1 GiB", "1", true}};
    cluster_ = new Cluster(options);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->ok()) << cluster_->Describe(); }

  // Runs "env" (tests/cluster/cluster_programs.cc) through cdeploy with
  // `flags`, the three variables below in cdeploy's environment; returns the
  // root's output lines.
  std::vector<std::string> Env(const std::vector<std::string>& flags) {
    RunOptions run;
    run.args = {cluster_->bridge_addr(), RunfilePath("tests/cluster/cluster_programs"), "--format=json"};
    run.args.insert(run.args.end(), flags.begin(), flags.end());
    for (const char* a : {"--", "env", "HARDENING_SECRET", "CONSTELLATION_HARDENING", "LC_HARDENING", "TZ"}) {
      run.args.push_back(a);
    }
    run.format = std::nullopt;
    run.env = {{"HARDENING_SECRET", "s3cret"}, {"CONSTELLATION_HARDENING", "c"}, {"LC_HARDENING", "l"}, {"TZ", "UTC"}};
    run.timeout = absl::Seconds(60);
    Program program(CdeployPath(), std::move(run));
    RunChecks checks;
    checks.what = "cdeploy env";
    checks.group_empty = false;
    checks.context = cluster_->Describe();
    RunResult r = Finish(program, checks);
    EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.Dump();
    if (r.trace.processes.empty()) return {};
    return Lines(r.trace.Root().out);
  }

  static Cluster* cluster_;
};
Cluster* CdeployEnv::cluster_ = nullptr;

TEST_F(CdeployEnv, OnlyTheAllowListIsForwardedByDefault) {
  EXPECT_THAT(Env({}), ElementsAre("HARDENING_SECRET unset", "CONSTELLATION_HARDENING=c", "LC_HARDENING=l", "TZ=UTC"));
}

TEST_F(CdeployEnv, EnvNameForwardsOneMore) {
  EXPECT_THAT(Env({"--env=HARDENING_SECRET"}),
              ElementsAre("HARDENING_SECRET=s3cret", "CONSTELLATION_HARDENING=c", "LC_HARDENING=l", "TZ=UTC"));
}

TEST_F(CdeployEnv, EnvAllForwardsEverything) {
  EXPECT_THAT(Env({"--env-all"}),
              ElementsAre("HARDENING_SECRET=s3cret", "CONSTELLATION_HARDENING=c", "LC_HARDENING=l", "TZ=UTC"));
}

TEST(CdeployEnvFlag, ABadNameIsAnError) {
  CommandResult r = RunCommand({CdeployPath(), "127.0.0.1:1", "/bin/true", "--env=A=B"});
  EXPECT_EQ(r.code, 2) << r.error;
  EXPECT_THAT(r.error, HasSubstr("not a variable name"));
}

}  // namespace
}  // namespace constellation::testing
