#pragma once

// A fixture for the cluster-mode integration tests (issue 5, item 6): starts
// real `constellation` daemons (daemon.h) as separate processes (nodes first,
// then a master whose nodes.toml lists them), each with its own --cache-dir
// under TEST_TMPDIR; waits for their "listening on" lines (never sleeps); runs
// `cdeploy --format=json` against the bridge through the shared harness's
// Program (tests/harness/program.h); can SIGKILL one node mid-run; and kills
// and reaps every daemon and every process they started when it is
// destroyed, whatever the test's outcome. Nodes can run in network
// namespaces (netns_lab.h). The cluster tests get the shared harness
// (RunCommand, RunfilePath, IsDescendantOf, EventReader, ...) through this
// header.

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "tests/cluster/daemon.h"
#include "tests/cluster/pki.h"
#include "tests/harness/command.h"
#include "tests/harness/events.h"
#include "tests/harness/proc_fs.h"
#include "tests/harness/program.h"
#include "tests/harness/run.h"
#include "tests/harness/spawn.h"
#include "tests/harness/trace.h"

namespace constellation::testing {

std::string DaemonPath();   // //daemon:constellation
std::string CdeployPath();  // //cli:cdeploy
// //examples:<name> ("fibonacci").
std::string ExamplePath(const std::string& name);
// A fresh directory under TEST_TMPDIR whose name starts with `prefix`.
std::string MakeTempDir(const std::string& prefix);

// A node of a cluster: its capacity as nodes.toml spells it.
struct NodeSpec {
  std::string mem;  // "2 GiB"
  std::string cpu;  // "0.5"
  bool bridge = false;
  std::string host = "127.0.0.1";  // where it binds (port 0)
  std::string netns;               // run under `ip netns exec` if set
};

struct ClusterOptions {
  std::vector<NodeSpec> nodes;
  std::string master_host = "127.0.0.1";
  std::string master_netns;
  absl::Duration start_timeout = absl::Seconds(30);
  // Run every daemon with --insecure instead of the TLS bundles of TestPki.
  bool insecure = false;
  // Extra arguments for every node daemon (not the master), e.g. {"--master-grace=1s"}.
  std::vector<std::string> node_args;
  // Extra arguments for the master, e.g. {"--peer-timeout=2s"}.
  std::vector<std::string> master_args;
};

struct DeployOptions {
  std::vector<std::string> args;                         // the program's argv[1...]
  std::vector<std::pair<std::string, std::string>> env;  // extra environment for cdeploy (forwarded)
  std::string stdin_data;
  bool close_stdin = true;
  bool json = true;  // --format=json
  // A hang guard, not a timing: sanitizer builds run several times slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  absl::Duration timeout = absl::Seconds(180);
#else
  absl::Duration timeout = absl::Seconds(60);
#endif
  // Also check that no process of the deployment is left on any node after
  // cdeploy exits (within 10 s).
  bool check_nothing_left = true;
  std::vector<std::string> cdeploy_args;    // more options for cdeploy, e.g. {"--reconnect-timeout=3s"}
  std::vector<std::string> cdeploy_prefix;  // e.g. {"ip", "netns", "exec", ns} to run cdeploy elsewhere
  // cdeploy's TLS bundle; "" = the tests' client (TestPki), or --insecure for an insecure cluster.
  std::string tls_bundle;
};

class Cluster {
 public:
  // Starts the nodes, writes nodes.toml, starts the master; check ok() (the
  // reasons are added as test failures).
  explicit Cluster(ClusterOptions options);
  ~Cluster();  // stops the master, then the nodes; kills and reaps everything
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& bridge_addr() const { return bridge_addr_; }
  const std::string& master_addr() const { return master_addr_; }
  size_t size() const { return nodes_.size(); }
  Daemon& node(size_t i) { return *nodes_[i]; }
  Daemon& master() { return *master_; }
  const std::string& node_addr(size_t i) const { return node_addrs_[i]; }
  // Where node i keeps uploaded binaries, and the master its copies.
  std::string node_cache(size_t i) const { return cache_dirs_[i] + "/node"; }
  std::string master_cache() const { return master_cache_dir_ + "/master"; }
  const std::string& nodes_toml() const { return nodes_toml_; }
  bool insecure() const { return options_.insecure; }
  // cdeploy's flag for this cluster: --tls=<the tests' client> or --insecure.
  std::string ClientTlsFlag() const;

  // Which node's daemon OS pid `os_pid` descends from; -1 if none.
  int NodeOfOsPid(pid_t os_pid) const;

  // SIGKILLs node i's daemon (alone: its processes are left to notice).
  void CrashNode(size_t i);
  // SIGKILLs the master alone: its nodes keep their processes (--master-grace).
  void CrashMaster();
  // Starts the master again at the same addresses with the same state
  // directory; false (with test failures added) if it does not come up.
  bool RestartMaster();

  // Starts cdeploy against the bridge (the caller reads it).
  std::unique_ptr<Program> StartDeploy(const std::string& binary, const DeployOptions& options);
  // Runs a deployment to the end. With JSON it checks (with EXPECTs) the
  // trace's invariants and that cdeploy's exit code follows DESIGN.md's rule.
  RunResult Deploy(const std::string& binary, const DeployOptions& options);
  RunResult Deploy(const std::string& binary, std::vector<std::string> args);

  // Every process launched by any node (OS pids), for leak checks.
  std::vector<pid_t> LaunchedAnywhere() const;
  std::string Describe() const;  // every daemon's state and output tail

 private:
  bool StartMaster(const std::string& bind);

  ClusterOptions options_;
  bool ok_ = false;
  std::vector<std::unique_ptr<Daemon>> nodes_;
  std::unique_ptr<Daemon> master_;
  std::vector<std::string> node_addrs_;
  std::vector<std::string> cache_dirs_;
  std::string master_cache_dir_;
  std::string nodes_toml_;
  std::string master_addr_;
  std::string bridge_addr_;
};

// The loopback cluster of issue 5 (a): 2 GiB/2 cpu with the bridge, 1 GiB/1
// cpu, 0.5 GiB/0.5 cpu.
ClusterOptions ThreeNodeLoopback();

}  // namespace constellation::testing
