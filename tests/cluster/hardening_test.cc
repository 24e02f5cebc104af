// Issue 11, item 3 (daemon hardening), end to end: a "label" that is a shell
// command runs nothing (cdeploy runs bazel with an argument vector and
// refuses what is not a label); the environment cdeploy forwards to the
// cluster is an allow-list unless --env-all; daemons started with --run-as
// launch nothing as root.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

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
using ::testing::Not;

// The Uid: line of /proc/PID/status.
std::string ReadProcStatusUid(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Uid:", 0) == 0) return line;
  }
  return "";
}

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
    run.args = {cluster_->bridge_addr(), RunfilePath("tests/cluster/cluster_programs"), "--format=json",
                cluster_->ClientTlsFlag()};
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

// ---- --run-as ----------------------------------------------------------------------------------

// A node and a master started as root with --run-as=nobody: every process of
// a deployment runs as nobody, and the caches belong to nobody.
TEST(RunAs, NothingLaunchedRunsAsRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  // Under /tmp: nobody cannot reach TEST_TMPDIR (under /root).
  char base[] = "/tmp/hardening_run_as.XXXXXX";
  ASSERT_NE(mkdtemp(base), nullptr);
  chmod(base, 0755);
  std::string dir = base;
  // The bundles are read (as root, from under TEST_TMPDIR) before the daemons become nobody.
  TestPki& pki = TestPki::Get();
  Daemon node("node", {DaemonPath(), "127.0.0.1:0", "--cache-dir=" + dir + "/node", "--run-as=nobody",
                       "--tls=" + pki.Node("127.0.0.1")});
  absl::StatusOr<std::string> node_addr = node.WaitListening("node", absl::Seconds(30));
  ASSERT_TRUE(node_addr.ok()) << node_addr.status() << node.Describe();
  std::string toml = dir + "/nodes.toml";
  std::ofstream(toml) << "[[nodes]]\nfabric_addr = \"" << *node_addr
                      << "\"\nbridge_bind = \"127.0.0.1:0\"\nmem = \"1 GiB\"\ncpu = 1\n";
  Daemon master("master", {DaemonPath(), "127.0.0.1:0", toml, "--cache-dir=" + dir + "/master",
                           "--state-dir=" + dir + "/state", "--run-as=nobody", "--tls=" + pki.Master("127.0.0.1")});
  ASSERT_TRUE(master.WaitListening("master", absl::Seconds(30)).ok()) << master.Describe();
  absl::StatusOr<std::string> bridge = master.WaitListening("bridge", absl::Seconds(30));
  ASSERT_TRUE(bridge.ok()) << bridge.status() << master.Describe();

  RunOptions run;
  run.args = {*bridge, RunfilePath("tests/cluster/cluster_programs"), "--format=json", "--tls=" + pki.Client(), "--",
              "uid"};
  run.format = std::nullopt;
  run.timeout = absl::Seconds(60);
  Program program(CdeployPath(), std::move(run));
  RunChecks checks;
  checks.what = "cdeploy uid";
  checks.group_empty = false;
  checks.context = node.Describe() + master.Describe();
  RunResult r = Finish(program, checks);
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.Dump() << checks.context;
  std::string out, err;
  for (const auto& [pid, p] : r.trace.processes) {
    out += p.out;
    err += p.err;
  }
  // The user could make each process's cgroup under the base it was given
  // (a monitor says so where the node's stderr goes, if not).
  EXPECT_THAT(err + node.stderr_text(), Not(HasSubstr("cannot make this process's cgroup"))) << err << node.Describe();
  EXPECT_THAT(out, HasSubstr("root uid 65534 euid 65534")) << r.Dump();
  EXPECT_THAT(out, HasSubstr("child uid 65534 euid 65534")) << r.Dump();
  struct stat st;
  ASSERT_EQ(stat((dir + "/node/node").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((dir + "/state").c_str(), &st), 0) << "the master's job store";
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_THAT(ReadProcStatusUid(node.os_pid()), HasSubstr("65534"));
  master.Stop();
  node.Stop();
  EXPECT_EQ(system(("rm -rf " + dir).c_str()), 0);
}

TEST(RunAs, AnUnknownUserIsAnError) {
  CommandResult r = RunCommand({DaemonPath(), "127.0.0.1:0", "--cache-dir=" + MakeTempDir("runas"),
                                "--run-as=no-such-user-x", "--tls=" + TestPki::Get().Node("127.0.0.1")});
  EXPECT_EQ(r.code, 1) << r.error;
  EXPECT_THAT(r.error, HasSubstr("no user \"no-such-user-x\""));
}

}  // namespace
}  // namespace constellation::testing
