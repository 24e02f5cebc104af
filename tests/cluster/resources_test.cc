// Issue 5, item 6 (c): resources on the fabric. On a cluster with small
// capacities, a program try_spawns 512 MiB processes that stay alive until
// told to exit (over a channel): try_spawn answers ResourceExhausted, at once,
// exactly when no node has room left; a spawn() made then waits, and succeeds
// once a sibling exits; a request no node could ever hold fails at once.
// The program is tests/cluster/cluster_programs.cc ("fill").
#include <unistd.h>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::SizeIs;

struct FillCase {
  std::vector<std::string> mems;  // node capacities
  int holders;                    // 512 MiB processes that fit beside the 100 MiB root
};

void RunFill(const FillCase& c) {
  ClusterOptions options;
  for (size_t i = 0; i < c.mems.size(); ++i) options.nodes.push_back({c.mems[i], "1", i == 0});
  Cluster cluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  std::string program = RunfilePath("tests/cluster/cluster_programs");

  DeployOptions deploy;
  deploy.args = {"fill", "512"};
  deploy.close_stdin = false;
  std::unique_ptr<Program> run = cluster.StartDeploy(program, deploy);
  EventReader reader(run.get());
  // The cluster is full: the root's try_spawn failed, every holder is alive
  // (each waits for its parent's word) and says where it runs.
  std::map<int, int> node_of_holder;
  static const std::regex kHolder("holder ([0-9]+) at [0-9.:/a-f]+ os ([0-9]+)\n");
  ASSERT_TRUE(reader.ReadUntil([&](const Event&) {
    int up = 0;
    for (const auto& [pid, out] : reader.out) up += std::regex_search(out, kHolder) ? 1 : 0;
    return up >= c.holders && !reader.root.empty() &&
           reader.out[reader.root].find("try_spawn failed") != std::string::npos;
  })) << run->stdout_text()
      << run->stderr_text() << cluster.Describe();
  for (const auto& [pid, out] : reader.out) {
    std::smatch m;
    if (!std::regex_search(out, m, kHolder)) continue;
    int index = std::stoi(m[1]);
    int node = cluster.NodeOfOsPid(std::stoi(m[2]));
    EXPECT_NE(node, -1) << "holder " << index << " is on no node";
    node_of_holder[index] = node;
  }
  EXPECT_THAT(node_of_holder, SizeIs(c.holders));
  // One 512 MiB holder per node at most: a node never holds more than it has.
  std::map<int, int> per_node;
  for (const auto& [index, node] : node_of_holder) ++per_node[node];
  for (const auto& [node, count] : per_node) EXPECT_EQ(count, 1) << "node " << node << " holds " << count;
  run->WriteStdin("release\n");
  run->CloseStdin();

  ExitStatus exit = run->Wait();
  EXPECT_EQ(exit.ToString(), "exit code 0") << run->stderr_text();
  Trace trace = ParseTrace(run->lines());
  ASSERT_TRUE(trace.errors.empty()) << trace.Dump();
  std::vector<std::string> lines = Lines(trace.Root().out);
  ASSERT_THAT(lines, SizeIs(7)) << trace.Root().out << trace.Root().err;
  EXPECT_EQ(lines[0], absl::StrCat("placed ", c.holders)) << "try_spawn should fail exactly when the cluster is full";
  EXPECT_THAT(lines[1], MatchesRegex("try_spawn failed: ResourceExhausted in [0-9]+ ms: .*"));
  int ms = std::stoi(lines[1].substr(lines[1].find(" in ") + 4));
  EXPECT_LT(ms, 2000) << "try_spawn should fail at once: " << lines[1];
  EXPECT_EQ(lines[2], "spawn waiting while full");
  EXPECT_EQ(lines[3], "waiting spawn ok");
  EXPECT_EQ(lines[4], "try_spawn after the waiting spawn: ResourceExhausted");
  EXPECT_EQ(lines[5], "spawn of 1 TiB: ResourceExhausted");
  EXPECT_EQ(lines[6], "done");
  // The holders, and the one that waited: all exited 0 once told to.
  const ProcessRecord& root = trace.Root();
  EXPECT_THAT(root.children, SizeIs(c.holders + 1)) << trace.Dump();
  for (const std::string& child : root.children) {
    const ProcessRecord* p = trace.Find(child);
    EXPECT_EQ(p->ExitString(), "code 0") << p->out << p->err;
    EXPECT_THAT(p->out, HasSubstr("told to exit\n"));
  }
  // The waited-for holder (index 100) started only after holder 0 exited.
  const ProcessRecord* holder0 = nullptr;
  const ProcessRecord* waited = nullptr;
  for (const std::string& child : root.children) {
    const ProcessRecord* p = trace.Find(child);
    if (p->out.rfind("holder 0 at", 0) == 0) holder0 = p;
    if (p->out.rfind("holder 100 at", 0) == 0) waited = p;
  }
  ASSERT_NE(holder0, nullptr) << trace.Dump();
  ASSERT_NE(waited, nullptr) << trace.Dump();
  EXPECT_LT(holder0->exit_line, waited->spawn_line)
      << "the waiting spawn was granted before the sibling's exit was reported\n"
      << trace.Dump();

  // Everything released: the same program runs again the same way.
  DeployOptions again_options;
  again_options.args = {"fill", "512"};
  again_options.stdin_data = "release\n";
  RunResult again = cluster.Deploy(program, again_options);
  EXPECT_EQ(again.exit.ToString(), "exit code 0") << again.err;
  EXPECT_THAT(again.trace.Root().out, HasSubstr(absl::StrCat("placed ", c.holders, "\n")));
}

// Two nodes of 700 MiB: the root takes 100 MiB of one; each node has room for
// one 512 MiB holder, wherever the root went.
TEST(FabricResources, TwoNodes) { RunFill({{"700 MiB", "700 MiB"}, 2}); }

// Three nodes totalling 1.5 GiB; the root's node keeps 412 MiB: 2 holders.
TEST(FabricResources, ThreeNodesHalfGiBEach) { RunFill({{"512 MiB", "512 MiB", "512 MiB"}, 2}); }

// Issue 7 in cluster mode: the node daemon puts each process in a cgroup of
// its own too (the same monitor does it). A process over its memory is killed
// by the kernel and reported as such; its siblings and the root finish; every
// exit carries peak memory and CPU time.
TEST(FabricEnforcement, OverItsMemoryIsKilledAndReported) {
  if (geteuid() != 0 || access("/sys/fs/cgroup/memory", W_OK) != 0) GTEST_SKIP() << "needs writable cgroup v1";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer builds set no cgroup limits (ASan and TSan need several times the declared memory)";
#endif
  ClusterOptions options;
  options.nodes = {{"2 GiB", "2", true}, {"2 GiB", "2", false}};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  RunResult run =
      cluster.Deploy(RunfilePath("tests/resources/resource_programs"), std::vector<std::string>{"oom", "64"});
  const ProcessRecord& root = run.trace.Root();
  ASSERT_THAT(root.children, SizeIs(3)) << run.Dump();
  const ProcessRecord& hog = *run.trace.Find(root.children[2]);
  EXPECT_EQ(hog.ExitString(), "signal SIGKILL") << run.Dump();
  EXPECT_TRUE(hog.memory_exceeded) << run.Dump();
  EXPECT_EQ(hog.error, "exceeded its memory limit of 64 MiB");
  EXPECT_THAT(root.out, HasSubstr("sibling 0 ok\nsibling 1 ok\n")) << run.Dump();
  // The root's monitor of the hog hears it from the node agent (docs/async.md).
  EXPECT_THAT(root.out, ContainsRegex("monitor: process [0-9a-f]+ ran out of memory")) << run.Dump();
  EXPECT_EQ(root.ExitString(), "code 0");
  EXPECT_EQ(run.exit.ToString(), "exit code 137");
  for (const auto& [pid, p] : run.trace.processes) {
    EXPECT_TRUE(p.peak_mem.has_value() && *p.peak_mem > 0) << pid << "\n" << run.Dump();
  }
}

// The root is placed as what its init() asks for (the master asks the binary
// first): a 512 MiB root on a 1.6 GiB node leaves room for one 1 GiB holder
// and not for a 0.5 GiB one. Placed with the default 100 MiB it would hold both.
TEST(FabricResources, RootIsPlacedWithWhatItsInitAsksFor) {
  ClusterOptions options;
  options.nodes = {{"1638 MiB", "2", true}};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  RunResult run =
      cluster.Deploy(RunfilePath("tests/resources/resource_programs"), std::vector<std::string>{"reference"});
  EXPECT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  std::vector<std::string> lines = Lines(run.trace.Root().out);
  ASSERT_FALSE(lines.empty()) << run.Dump();
  EXPECT_EQ(lines[0], "placed 1, then ResourceExhausted") << run.Dump();
  EXPECT_THAT(run.trace.Root().out, HasSubstr("workers 46 sum 1035\n"));
}

TEST(FabricResources, OversizedSpawnRequestIsRefusedAndTheProcessGoesOn) {
  ClusterOptions options;
  options.nodes = {{"2 GiB", "2", true}};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  RunResult run = cluster.Deploy(RunfilePath("tests/resources/resource_programs"), std::vector<std::string>{"bigargs"});
  EXPECT_EQ(run.exit.ToString(), "exit code 0") << run.Dump();
  EXPECT_EQ(run.trace.Root().out,
            "61 MiB of arguments: INVALID_ARGUMENT: spawn request (arguments, argv and environment) over the 60 MiB "
            "limit\n1 MiB of arguments: ok\n");
}

TEST(FabricResources, RootBiggerThanEveryNodeIsAClearError) {
  ClusterOptions options;
  options.nodes = {{"256 MiB", "2", true}};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  DeployOptions deploy;
  deploy.args = {"reference"};  // its init() asks for 512 MiB
  deploy.json = false;
  RunResult run = cluster.Deploy(RunfilePath("tests/resources/resource_programs"), deploy);
  EXPECT_NE(run.exit.ToString(), "exit code 0");
  EXPECT_THAT(run.err, HasSubstr("cannot start the program")) << run.err;
  EXPECT_THAT(run.err, HasSubstr("512 MiB")) << run.err;
}

}  // namespace
}  // namespace constellation::testing
