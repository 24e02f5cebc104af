// Nodes that join (issue 16, item 1): a master whose nodes.toml lists one
// node, two node daemons started with --join (with their node certificates),
// a deployment whose processes can only fit on the joined nodes, and one
// joined node stopped with SIGTERM, which leaves: `cdeploy nodes` no longer
// lists it. Each node binds its own loopback address (127.0.0.1, .2, .3), so
// a process's Pid says which node ran it.
#include <signal.h>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"

namespace constellation::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

class JoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    // Room for the root (100 MiB) and no child (20 MiB each) beside it.
    options.nodes = {{"110 MiB", "0.5", true}};
    cluster_ = std::make_unique<Cluster>(options);
    ASSERT_TRUE(cluster_->ok()) << cluster_->Describe();
  }
  void TearDown() override {
    if (HasFailure() && cluster_) {
      std::cerr << cluster_->Describe();
      for (auto& node : joined_) std::cerr << node->Describe();
    }
    joined_.clear();  // stopped (SIGTERM) before the master
  }

  // A node daemon on `host` that joins the master with `capacity` flags.
  Daemon& Join(const std::string& host, std::vector<std::string> extra) {
    std::vector<std::string> argv = {DaemonPath(), host + ":0", "--cache-dir=" + MakeTempDir("joined-"),
                                     "--join=" + cluster_->master_addr(),
                                     cluster_->insecure() ? "--insecure" : "--tls=" + TestPki::Get().Node(host)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (geteuid() == 0) argv.push_back("--run-as=root");
    joined_.push_back(std::make_unique<Daemon>("joined " + host, std::move(argv)));
    return *joined_.back();
  }

  CommandResult Nodes() {
    return RunCommand({CdeployPath(), "nodes", cluster_->bridge_addr(), "--format=json", cluster_->ClientTlsFlag()});
  }
  // Waits (bounded) until `cdeploy nodes` satisfies `want`; the last answer.
  CommandResult WaitNodes(const std::function<bool(const std::string&)>& want) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    CommandResult r;
    do {
      r = Nodes();
      if (r.code == 0 && want(r.output)) return r;
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < deadline);
    return r;
  }

  // Waits (bounded) until `daemon`'s stderr matches `pattern`; its stderr.
  // (The daemon wrote the line before the event the test saw, but the
  // harness reads its stderr on a thread of its own.)
  static std::string WaitStderr(const Daemon& daemon, const std::string& pattern) {
    std::regex want(pattern);
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::string err = daemon.stderr_text();
    while (!std::regex_search(err, want) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      err = daemon.stderr_text();
    }
    return err;
  }

  std::unique_ptr<Cluster> cluster_;
  std::vector<std::unique_ptr<Daemon>> joined_;
};

TEST_F(JoinTest, JoinedNodesRunProcessesAndANodeThatStopsLeaves) {
  // 64 MiB each: three children apiece, so the six children need both.
  for (const char* host : {"127.0.0.2", "127.0.0.3"}) {
    Daemon& node = Join(host, {"--mem=64 MiB", "--cpu=1"});
    ASSERT_TRUE(node.WaitListening("node", absl::Seconds(30)).ok()) << node.Describe();
  }
  CommandResult listed = WaitNodes([](const std::string& out) {
    return std::regex_search(out, std::regex("127\\.0\\.0\\.2:[0-9]+\",\"state\":\"up\"")) &&
           std::regex_search(out, std::regex("127\\.0\\.0\\.3:[0-9]+\",\"state\":\"up\""));
  });
  ASSERT_EQ(listed.code, 0) << listed.error;
  EXPECT_THAT(listed.output, HasSubstr("\"source\":\"joined\""));
  EXPECT_THAT(listed.output, HasSubstr("\"source\":\"config\""));
  EXPECT_THAT(listed.output, HasSubstr("\"mem\":\"67108864\"")) << "the capacity it was given";

  DeployOptions deploy;
  deploy.args = {"where", "6"};
  deploy.json = false;
  RunResult run = cluster_->Deploy(RunfilePath("tests/cluster/cluster_programs"), deploy);
  ASSERT_EQ(run.exit.ToString(), "exit code 0") << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("ring ok among 6"));
  std::map<std::string, int> children_on;
  static const std::regex kChild("child [0-9]+ at (127\\.0\\.0\\.[0-9]+):");
  for (std::sregex_iterator it(run.out.begin(), run.out.end(), kChild), end; it != end; ++it) {
    ++children_on[(*it)[1]];
  }
  EXPECT_EQ(children_on["127.0.0.2"], 3) << run.out;
  EXPECT_EQ(children_on["127.0.0.3"], 3) << run.out;

  // SIGTERM: the node tells the master it leaves, and exits 0.
  Daemon& leaving = *joined_[1];
  ASSERT_EQ(kill(leaving.os_pid(), SIGTERM), 0);
  std::optional<int> code = leaving.WaitExit(absl::Seconds(30));
  ASSERT_TRUE(code.has_value()) << leaving.Describe();
  EXPECT_EQ(*code, 0) << leaving.Describe();
  // Left at once: the next answer already lacks it (no peer timeout to wait for).
  CommandResult after = Nodes();
  ASSERT_EQ(after.code, 0) << after.error;
  EXPECT_THAT(after.output, Not(HasSubstr("127.0.0.3:"))) << after.output;
  EXPECT_THAT(after.output, HasSubstr("127.0.0.2:"));
  const char* kLeft = "INFO join: node 127\\.0\\.0\\.3:[0-9]+ left";
  EXPECT_THAT(WaitStderr(cluster_->master(), kLeft), ContainsRegex(kLeft));
}

// The master refuses what it cannot dial (checked on its side, over the
// real call): the node says so and exits 1 instead of retrying.
TEST_F(JoinTest, AJoinTheMasterRefusesEndsTheNode) {
  Daemon& node = Join("127.0.0.2", {"--mem=64 MiB", "--cpu=1", "--advertise=0.0.0.0:0"});
  std::optional<int> code = node.WaitExit(absl::Seconds(30));
  ASSERT_TRUE(code.has_value()) << node.Describe();
  EXPECT_EQ(*code, 1) << node.Describe();
  const char* kRefused = "ERROR join: the master at [0-9.:]+ refused the join: .*wildcard";
  EXPECT_THAT(WaitStderr(node, kRefused), ContainsRegex(kRefused));
  CommandResult listed = Nodes();
  EXPECT_THAT(listed.output, Not(HasSubstr("\"joined\""))) << listed.output;
}

}  // namespace
}  // namespace constellation::testing
