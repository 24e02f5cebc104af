// Issue 5, item 6 (d): SIGKILL a node daemon mid-run, while the program has
// processes on it that the root is waiting on. The deployment ends with an
// error (cdeploy's exit code is non-zero; the lost processes are reported as
// exited with an error, and the root's recv() from them returns an error),
// nothing hangs (every wait here is bounded), and the remaining nodes serve
// the next deployment; the root's monitors of the lost processes say their
// node was lost. The program is tests/cluster/cluster_programs.cc ("hold").
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int kChildren = 6;

struct Running {
  std::string pid;   // 7 hex
  std::string full;  // ip:port/nonce
  pid_t os_pid = 0;
  int node = -1;
};

class NodeLoss : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.nodes = {{"2 GiB", "2", true}, {"2 GiB", "2", false}, {"2 GiB", "2", false}};
    cluster_ = std::make_unique<Cluster>(options);
    ASSERT_TRUE(cluster_->ok()) << cluster_->Describe();
    program_ = RunfilePath("tests/cluster/cluster_programs");
  }
  void TearDown() override {
    if (HasFailure() && cluster_) std::cerr << cluster_->Describe();
  }

  // Starts "hold" and reads until the root waits on all its children, each
  // of which has said where it runs.
  void StartHold() {
    DeployOptions deploy;
    deploy.args = {"hold", std::to_string(kChildren)};
    deploy.close_stdin = false;
    deploy.timeout = absl::Seconds(60);
    run_ = cluster_->StartDeploy(program_, deploy);
    reader_ = std::make_unique<EventReader>(run_.get());
    static const std::regex kWhere("(root|child [0-9]+) at ([0-9.]+:[0-9]+/[0-9a-f]+) os ([0-9]+)\n");
    ASSERT_TRUE(reader_->ReadUntil([&](const Event&) {
      int children = 0;
      for (const auto& [pid, out] : reader_->out) children += pid != reader_->root && std::regex_search(out, kWhere);
      return children == kChildren && absl::StrContains(reader_->out[reader_->root], "waiting on ");
    })) << run_->stdout_text()
        << run_->stderr_text();
    for (const auto& [pid, out] : reader_->out) {
      std::smatch m;
      if (!std::regex_search(out, m, kWhere)) continue;
      Running r{pid, m[2], static_cast<pid_t>(std::stoi(m[3])), -1};
      r.node = cluster_->NodeOfOsPid(r.os_pid);
      ASSERT_NE(r.node, -1) << m[1] << " (OS pid " << r.os_pid << ") runs under no node daemon";
      if (pid == reader_->root) {
        root_ = r;
      } else {
        children_.push_back(r);
      }
    }
    ASSERT_EQ(children_.size(), static_cast<size_t>(kChildren));
  }

  std::unique_ptr<Cluster> cluster_;
  std::string program_;
  std::unique_ptr<Program> run_;
  std::unique_ptr<EventReader> reader_;
  Running root_;
  std::vector<Running> children_;
};

TEST_F(NodeLoss, NodeWithChildrenKilledMidRun) {
  ASSERT_NO_FATAL_FAILURE(StartHold());
  // A node that runs some of the children but not the root.
  std::map<int, int> per_node;
  for (const Running& c : children_) ++per_node[c.node];
  int victim = -1;
  for (const auto& [node, count] : per_node) {
    if (node != root_.node) victim = node;
  }
  ASSERT_NE(victim, -1) << "every child runs on the root's node " << root_.node << "; placement does not spread";
  std::set<std::string> lost, kept;
  for (const Running& c : children_) (c.node == victim ? lost : kept).insert(c.pid);

  absl::Time killed_at = absl::Now();
  cluster_->CrashNode(victim);
  // The master reports each lost process as exited with an error, and the
  // root's recv() from each returns an error, while the others still run.
  std::map<std::string, Event> exits;
  ASSERT_TRUE(reader_->ReadUntil([&](const Event& e) {
    if (e.type == Event::kExit) exits[e.pid] = e;
    int failed = 0;
    for (const Running& c : children_) {
      if (lost.contains(c.pid) && absl::StrContains(reader_->out[reader_->root], "recv from " + c.full + " failed")) {
        ++failed;
      }
    }
    bool all_reported = true;
    for (const std::string& pid : lost) all_reported = all_reported && exits.contains(pid);
    return all_reported && failed == static_cast<int>(lost.size());
  })) << "the lost processes were not reported (or the root's recv did not fail)\n"
      << run_->stdout_text() << run_->stderr_text();
  absl::Duration noticed = absl::Now() - killed_at;
  EXPECT_LT(noticed, absl::Seconds(15)) << "the master should notice a dead node within a few seconds";
  for (const std::string& pid : lost) {
    const Event& e = exits[pid];
    EXPECT_TRUE(!e.code.has_value() || *e.code != 0) << pid << " lost with its node, but reported as exiting 0";
  }
  for (const std::string& pid : kept) EXPECT_FALSE(exits.contains(pid)) << pid << " was not on the lost node";
  EXPECT_FALSE(exits.contains(reader_->root));
  // What was on the dead node is gone (its monitors lose the node's socket).
  EXPECT_THAT(cluster_->node(victim).WaitLaunchedGone(absl::Seconds(10)), IsEmpty());

  // Let the others finish: the deployment ends, with an error.
  run_->WriteStdin("release\n");
  run_->CloseStdin();
  ExitStatus exit = run_->Wait();
  ASSERT_FALSE(exit.timed_out);
  EXPECT_TRUE(exit.exited) << exit.ToString();
  EXPECT_NE(exit.code, 0) << "a deployment that lost processes must not succeed";
  Trace trace = ParseTrace(run_->lines());
  EXPECT_TRUE(trace.errors.empty()) << trace.Dump();
  EXPECT_EQ(exit.code, trace.ExpectedBridgeCode()) << trace.Dump();
  EXPECT_EQ(trace.Root().ExitString(), "code 0") << trace.Root().out << trace.Root().err;
  for (const Running& c : children_) {
    const ProcessRecord* p = trace.Find(c.pid);
    ASSERT_NE(p, nullptr);
    // The root's monitor of each child (issue 14): its node lost, or its normal exit.
    if (lost.contains(c.pid)) {
      EXPECT_NE(p->ExitString(), "code 0") << c.pid;
      EXPECT_THAT(trace.Root().out, HasSubstr("down " + c.full + ": process " + c.pid + " is gone: its node was lost"));
    } else {
      EXPECT_EQ(p->ExitString(), "code 0") << c.pid << ": " << p->err;
      EXPECT_THAT(trace.Root().out, HasSubstr("from " + c.full + "\n"));
      EXPECT_THAT(trace.Root().out, HasSubstr("down " + c.full + ": process " + c.pid + " exited with code 0\n"));
    }
  }
  EXPECT_THAT(trace.Root().out, HasSubstr("root done\n"));
  for (size_t i = 0; i < cluster_->size(); ++i) {
    if (static_cast<int>(i) == victim) continue;
    EXPECT_THAT(cluster_->node(i).WaitLaunchedGone(absl::Seconds(10)), IsEmpty()) << "node " << i;
  }

  // The remaining nodes serve the next deployment; nothing goes to the dead one.
  DeployOptions next;
  next.args = {"where", "6"};
  RunResult r = cluster_->Deploy(program_, next);
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err << r.trace.Dump();
  EXPECT_THAT(r.trace.Root().out, HasSubstr("ring ok among 6\n"));
  EXPECT_THAT(r.trace.processes, SizeIs(7));
  RunResult fib = cluster_->Deploy(ExamplePath("fibonacci"), std::vector<std::string>{"7"});
  EXPECT_EQ(fib.exit.ToString(), "exit code 0") << fib.err;
  EXPECT_EQ(fib.trace.Root().out, "fibonacci(7) = 13\n");
}

// The root's own node dies: the root is reported lost, its children (on other
// nodes) find their parent gone, and the deployment ends with an error.
TEST_F(NodeLoss, RootsNodeKilledMidRun) {
  ASSERT_NO_FATAL_FAILURE(StartHold());
  int victim = root_.node;
  absl::Time killed_at = absl::Now();
  cluster_->CrashNode(victim);
  ExitStatus exit = run_->Wait();  // bounded by the deployment's timeout: a hang fails here
  EXPECT_LT(absl::Now() - killed_at, absl::Seconds(30)) << "the deployment took too long to end";
  ASSERT_FALSE(exit.timed_out) << cluster_->Describe();
  EXPECT_TRUE(exit.exited && exit.code != 0) << exit.ToString();
  Trace trace = ParseTrace(run_->lines());
  EXPECT_TRUE(trace.errors.empty()) << trace.Dump();
  EXPECT_NE(trace.Root().ExitString(), "code 0");
  EXPECT_NE(trace.Root().ExitString(), "never exited");
  for (size_t i = 0; i < cluster_->size(); ++i) {
    EXPECT_THAT(cluster_->node(i).WaitLaunchedGone(absl::Seconds(10)), IsEmpty()) << "node " << i;
  }
  RunResult r = cluster_->Deploy(program_, {"where", "4"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err << r.trace.Dump();
  EXPECT_THAT(r.trace.Root().out, HasSubstr("ring ok among 4\n"));
}

}  // namespace
}  // namespace constellation::testing
