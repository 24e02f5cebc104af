#pragma once

// A fixture for the cluster-mode integration tests (issue 5, item 6): starts
// real `constellation` daemons as separate processes (nodes first, then a
// master whose nodes.toml lists them), each with its own --cache-dir under
// TEST_TMPDIR; waits for their "listening on" lines (never sleeps); runs
// `cdeploy --format=json` against the bridge through the local-mode harness's
// Program (tests/local/harness.h); can SIGKILL one node mid-run; and kills and
// reaps every daemon and every process they started when it is destroyed,
// whatever the test's outcome.
//
// Process hygiene. Each daemon is started in its own process group; the
// processes a node launches (monitor and user process) stay in that group,
// also once they are orphaned by a daemon that died first. A daemon is reaped
// with waitid(WNOWAIT) first so its pid (and so its group id) stays reserved
// until everything left in the group has been SIGKILLed. (The test process is
// not made a subreaper: the local-mode harness counts zombies as leftovers.)
//
// Network namespaces. A daemon can be started under `ip netns exec NS`: ip
// execs the daemon in place, so the pid and group are the same. NetnsLab
// creates namespaces joined by veth pairs to a bridge device in a namespace
// of its own, with one more veth to the root namespace so that the test (and
// cdeploy) reach the cluster from outside; everything it creates is named
// uniquely per run and deleted in its destructor.

#include <sys/types.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/local/harness.h"

namespace constellation::testing {

// A file in this test's runfiles ("daemon/constellation"); fails the test if
// it is not there.
std::string RunfilePath(const std::string& relative);
std::string DaemonPath();   // //daemon:constellation
std::string CdeployPath();  // //cli:cdeploy
// //examples:<name> ("fibonacci").
std::string ExamplePath(const std::string& name);
// A fresh directory under TEST_TMPDIR whose name starts with `prefix`.
std::string MakeTempDir(const std::string& prefix);

// Runs a short command to completion (bounded), returns its exit status and
// its stdout+stderr.
struct CommandResult {
  int code = -1;       // the shell's view: code, or 128 + signal; -1 if it could not run
  std::string output;  // stdout (or why it could not run)
  std::string error;   // stderr
};
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(30));

// One daemon process (or any long-running process whose stdout says when it
// is ready). A background thread collects stdout and stderr (so the pipes
// never fill) and lets the test wait for a line.
class Daemon {
 public:
  // argv[0] is the program to run (a path, or a name found on PATH).
  Daemon(std::string name, std::vector<std::string> argv);
  ~Daemon();  // Stop()
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  const std::string& name() const { return name_; }
  pid_t os_pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  // Waits until stdout has a line starting with `prefix`; returns the rest of
  // that line. An error if the daemon exits first or `timeout` passes.
  absl::StatusOr<std::string> WaitForLine(const std::string& prefix, absl::Duration timeout);
  // "constellation: <what> listening on HOST:PORT" -> HOST:PORT.
  absl::StatusOr<std::string> WaitListening(const std::string& what, absl::Duration timeout);

  // Waits (bounded) for the daemon to exit on its own; its shell exit code,
  // or nullopt if it is still running after `timeout`.
  std::optional<int> WaitExit(absl::Duration timeout);
  bool exited() const;

  // SIGKILLs the daemon alone (not its group): a crash. Returns at once.
  void Crash();
  // SIGTERM, a bounded wait (`grace`), then SIGKILL for the daemon and
  // everything left in its group; reaps all of it. Idempotent. A daemon that
  // needs the SIGKILL is only logged: shutdown has a test of its own.
  void Stop(absl::Duration grace = absl::Seconds(5));

  // OS pids of live (not zombie) processes in the daemon's group other than
  // the daemon itself: the processes it started.
  std::vector<pid_t> Launched() const;
  // Waits (bounded, checking every few ms) until Launched() is empty; returns
  // what is left after `limit`.
  std::vector<pid_t> WaitLaunchedGone(absl::Duration limit);
  // Reaps zombies of this group that were reparented to the test process.
  void ReapOrphans();

  // stdout and stderr so far.
  std::string stdout_text() const;
  std::string stderr_text() const;
  std::string Describe() const;  // name, pid, state and the tail of its output, for failure messages

 private:
  void ReadLoop(int out_fd, int err_fd);
  void OnExit();

  std::string name_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop the reader
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string out_, err_;  // guarded by mu_
  bool eof_ = false;       // guarded by mu_: both pipes at EOF
  std::optional<int> exit_code_;
  bool reaped_ = false;
};

// True if `pid` is a descendant of `ancestor` (walks /proc/<pid>/stat ppids).
bool IsDescendantOf(pid_t pid, pid_t ancestor);

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
};

struct DeployOptions {
  std::vector<std::string> args;                         // the program's argv[1...]
  std::vector<std::pair<std::string, std::string>> env;  // extra environment for cdeploy (forwarded)
  std::string stdin_data;
  bool close_stdin = true;
  bool json = true;  // --format=json
  absl::Duration timeout = absl::Seconds(60);
  // Also check that no process of the deployment is left on any node after
  // cdeploy exits (within 10 s).
  bool check_nothing_left = true;
  std::vector<std::string> cdeploy_prefix;  // e.g. {"ip", "netns", "exec", ns} to run cdeploy elsewhere
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

  // Which node's daemon OS pid `os_pid` descends from; -1 if none.
  int NodeOfOsPid(pid_t os_pid) const;

  // SIGKILLs node i's daemon (alone: its processes are left to notice).
  void CrashNode(size_t i);

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

// Network namespaces for one test run. Creates `count` host namespaces with
// addresses <subnet>.1 ... <subnet>.count/24, a switch namespace holding a
// bridge device that joins them, and a veth from the root namespace into the
// switch with <subnet>.254 so the root namespace reaches them. Check ok().
class NetnsLab {
 public:
  explicit NetnsLab(int count);
  ~NetnsLab();  // deletes every namespace and link it created
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& ns(int i) const { return namespaces_[i]; }  // i in [0, count)
  std::string ip(int i) const;                                   // of ns(i)
  std::string root_ip() const;                                   // the root namespace's end
  std::string subnet() const { return subnet_; }                 // "10.77.N"
  // Every namespace and link this lab created that still exists (for the cleanup check).
  std::vector<std::string> Leftovers() const;

 private:
  bool Run(const std::vector<std::string>& argv);
  std::string tag_;
  std::string subnet_;
  std::vector<std::string> namespaces_;
  std::string switch_ns_;
  std::string root_link_;
  bool ok_ = false;
  std::string error_;
};

}  // namespace constellation::testing
