// A node's zygote (daemon/node_zygotes.h) on a one-node cluster: the program
// lib/process/zygote_program spawns a first child (executed: the deployment's
// zygote starts after it), then one with its root's environment
// (forked by the deployment's zygote on the node) and one after changing it
// (executed by the node), and checks that both start from the state a fresh
// exec reaches at init(): globals, fds opened before init() and after it,
// stdin, signal handlers and mask, environment, and who started them. With
// CONSTELLATION_ZYGOTE=off forwarded to the job, both are executed.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {
namespace {

class NodeZygote : public ::testing::Test {
 protected:
  static ClusterOptions OneNode() {
    ClusterOptions options;
    options.nodes = {{"2 GiB", "2", /*bridge=*/true}};
    return options;
  }
  RunResult Deploy(std::vector<std::pair<std::string, std::string>> env) {
    DeployOptions options;
    options.args = {"--warm-up"};  // the deployment's first spawned function, executed: its zygote starts then
    options.env = std::move(env);
    return cluster_.Deploy(RunfilePath("lib/process/zygote_program"), options);
  }
  Cluster cluster_{OneNode()};
};

TEST_F(NodeZygote, ASpawnedProcessForkedOnANodeStartsFromInitsState) {
  ASSERT_TRUE(cluster_.ok()) << cluster_.Describe();
  RunResult r = Deploy({});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.Dump() << cluster_.Describe();
}

TEST_F(NodeZygote, WithoutOneEverySpawnedProcessIsExecuted) {
  ASSERT_TRUE(cluster_.ok()) << cluster_.Describe();
  RunResult r = Deploy({{"CONSTELLATION_ZYGOTE", "off"}});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.Dump() << cluster_.Describe();
}

}  // namespace
}  // namespace constellation::testing
