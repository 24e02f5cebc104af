// Issue 5, item 6 (b): three network namespaces with their own addresses
// (<subnet>.1-3/24 in 10.77.0.0/16), joined by veth pairs to a bridge device
// in a fourth namespace, a node daemon in each, the master in the first; the
// root namespace reaches them through one more veth into the bridge, and
// cdeploy runs there, from outside the cluster. The fibonacci and all-to-all
// examples run across the three hosts, and a ring of channels between
// processes on different hosts shows where each process ran: its Pid carries
// its host's address.
//
// Needs root and `ip netns`; if the namespaces cannot be made the test fails
// (it does not skip).
#include <sys/stat.h>

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
#include "tests/cluster/netns_lab.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

std::string Sha256Hex(const std::string& path) {
  CommandResult r = RunCommand({"sha256sum", path});
  EXPECT_EQ(r.code, 0) << r.output << r.error;
  return r.output.substr(0, 64);
}

bool Cached(const std::string& dir, const std::string& sha) {
  struct stat st;
  return stat((dir + "/" + sha).c_str(), &st) == 0;
}

struct Placement {
  std::string who;
  std::string ip;
  pid_t os_pid = 0;
};

// "<who> at <ip>:<port>/<nonce> os <os pid>" lines in every process's stdout.
std::vector<Placement> Placements(const Trace& trace) {
  static const std::regex kLine("^(.*) at ([0-9.]+):[0-9]+/[0-9a-f]+ os ([0-9]+)$");
  std::vector<Placement> found;
  for (const auto& [pid, p] : trace.processes) {
    for (const std::string& line : Lines(p.out)) {
      std::smatch m;
      if (std::regex_match(line, m, kLine)) found.push_back({m[1], m[2], static_cast<pid_t>(std::stoi(m[3]))});
    }
  }
  return found;
}

TEST(Netns, ExamplesRunAcrossThreeHosts) {
  NetnsLab lab(3);
  ASSERT_TRUE(lab.ok()) << "cannot build the network namespaces (this test needs root and `ip netns`): " << lab.error();
  ClusterOptions options;
  for (int i = 0; i < 3; ++i) {
    // Generous capacities: fibonacci(10) has 177 processes, most of them waiting on their children.
    options.nodes.push_back({"8 GiB", "8", i == 0, lab.ip(i), lab.ns(i)});
  }
  options.master_host = lab.ip(0);
  options.master_netns = lab.ns(0);
  Cluster cluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  // Every daemon listens on its own namespace's address.
  EXPECT_THAT(cluster.bridge_addr(), StartsWith(lab.ip(0) + ":"));
  EXPECT_THAT(cluster.master_addr(), StartsWith(lab.ip(0) + ":"));
  for (int i = 0; i < 3; ++i) EXPECT_THAT(cluster.node_addr(i), StartsWith(lab.ip(i) + ":"));

    // cdeploy runs here, in the root namespace: outside the cluster's hosts.
    // Under a sanitizer every process is several times heavier (and the
    // namespaces have no cgroups to hold them): fibonacci(6) has 25 processes,
    // still spread over the three hosts; fibonacci(10) has 177.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const std::vector<std::string> fib_args = {"6"};
  const std::string fib_line = "fibonacci(6) = 8\n";
  const size_t fib_processes = 25;
#else
  const std::vector<std::string> fib_args = {};
  const std::string fib_line = "fibonacci(10) = 55\n";
  const size_t fib_processes = 177;
#endif
  std::string fibonacci = ExamplePath("fibonacci");
  DeployOptions deploy;
  deploy.timeout = absl::Seconds(90);
  deploy.args = fib_args;
  RunResult fib = cluster.Deploy(fibonacci, deploy);
  EXPECT_EQ(fib.exit.ToString(), "exit code 0") << fib.err << cluster.Describe();
  EXPECT_EQ(fib.trace.Root().out, fib_line) << fib.trace.Dump();
  EXPECT_THAT(fib.trace.processes, SizeIs(fib_processes));
  // The master uploads a binary to a node only to run a process there.
  std::string fib_sha = Sha256Hex(fibonacci);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Cached(cluster.node_cache(i), fib_sha))
        << "no fibonacci process ran on node " << i << " (" << lab.ip(i) << ")";
  }

  std::string all_to_all = ExamplePath("all_to_all");
  deploy.args = {"9"};
  RunResult a2a = cluster.Deploy(all_to_all, deploy);
  EXPECT_EQ(a2a.exit.ToString(), "exit code 0") << a2a.err << cluster.Describe();
  EXPECT_EQ(a2a.trace.Root().out, "all-to-all among 9 processes\n") << a2a.trace.Dump();
  EXPECT_THAT(a2a.trace.processes, SizeIs(10));
  std::string a2a_sha = Sha256Hex(all_to_all);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Cached(cluster.node_cache(i), a2a_sha)) << "no all_to_all process ran on node " << i;
  }

  // Where each process ran: its Pid's address is its host's, and its OS
  // process descends from that host's node daemon. A token goes round a ring
  // of channels between them.
  deploy.args = {"where", "6"};
  RunResult where = cluster.Deploy(RunfilePath("tests/cluster/cluster_programs"), deploy);
  EXPECT_EQ(where.exit.ToString(), "exit code 0") << where.err << where.trace.Dump();
  EXPECT_THAT(where.trace.Root().out, HasSubstr("ring ok among 6\n"));
  std::vector<Placement> placements = Placements(where.trace);
  EXPECT_THAT(placements, SizeIs(7)) << where.trace.Dump();
  std::set<std::string> hosts;
  for (const Placement& p : placements) {
    hosts.insert(p.ip);
    int node = -1;
    for (int i = 0; i < 3; ++i) {
      if (p.ip == lab.ip(i)) node = i;
    }
    EXPECT_NE(node, -1) << p.who << " ran at " << p.ip << ", no host of the cluster";
    // The process has exited by now; its OS pid can only be checked while it runs (see node_loss_test).
  }
  EXPECT_EQ(hosts, (std::set<std::string>{lab.ip(0), lab.ip(1), lab.ip(2)}))
      << "the 7 processes should spread over the three hosts\n"
      << where.trace.Dump();
}

}  // namespace
}  // namespace constellation::testing
