#include "tests/cluster/cluster_fixture.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace constellation::testing {

// ---- paths and commands ------------------------------------------------------------------

std::string DaemonPath() { return RunfilePath("daemon/constellation"); }
std::string CdeployPath() { return RunfilePath("cli/cdeploy"); }
std::string ExamplePath(const std::string& name) { return RunfilePath("examples/" + name); }

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(tmp ? tmp : "/tmp", "/", prefix, "XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << ErrnoText("mkdtemp");
  return templ;
}

// ---- Cluster ---------------------------------------------------------------------------------

ClusterOptions ThreeNodeLoopback() {
  ClusterOptions options;
  options.nodes = {{"2 GiB", "2", true}, {"1 GiB", "1", false}, {"512 MiB", "0.5", false}};
  return options;
}

namespace {
// Tests run as root or not; as root, daemons must say who runs the processes
// (--run-as): the tests keep root, to see cgroups and OS pids as they are.
std::vector<std::string> WithRunAs(std::vector<std::string> argv) {
  if (geteuid() == 0) argv.push_back("--run-as=root");
  return argv;
}

// --tls=<bundle> for a daemon, or --insecure.
std::string DaemonTlsFlag(const ClusterOptions& options, const std::string& role, const std::string& host) {
  if (options.insecure) return "--insecure";
  TestPki& pki = TestPki::Get();
  return "--tls=" + (role == "master" ? pki.Master(host) : pki.Node(host));
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> InNetns(const std::string& ns, std::vector<std::string> argv) {
  if (ns.empty()) return argv;
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}
}  // namespace

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  std::string toml = "# written by tests/cluster/cluster_fixture.cc\n";
  for (size_t i = 0; i < options_.nodes.size(); ++i) {
    const NodeSpec& spec = options_.nodes[i];
    std::string cache = MakeTempDir(absl::StrCat("node", i, "-"));
    cache_dirs_.push_back(cache);
    // --drain-timeout=0: a node stopped at the end of a test kills what it runs at once.
    std::vector<std::string> argv = {DaemonPath(), spec.host + ":0", "--cache-dir=" + cache, "--drain-timeout=0",
                                     DaemonTlsFlag(options_, "node", spec.host)};
    argv.insert(argv.end(), options_.node_args.begin(), options_.node_args.end());
    nodes_.push_back(
        std::make_unique<Daemon>(absl::StrCat("node ", i), InNetns(spec.netns, WithRunAs(std::move(argv)))));
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    absl::StatusOr<std::string> addr = nodes_[i]->WaitListening("node", options_.start_timeout);
    if (!addr.ok()) {
      ADD_FAILURE() << "node " << i << " did not start: " << addr.status();
      return;
    }
    node_addrs_.push_back(*addr);
    const NodeSpec& spec = options_.nodes[i];
    absl::StrAppend(&toml, "\n[[nodes]]\nfabric_addr = \"", *addr, "\"\n");
    if (spec.bridge) absl::StrAppend(&toml, "bridge_bind = \"", options_.master_host, ":0\"\n");
    absl::StrAppend(&toml, "mem = \"", spec.mem, "\"\ncpu = ", spec.cpu, "\n");
  }
  std::string dir = MakeTempDir("cluster-");
  nodes_toml_ = dir + "/nodes.toml";
  {
    std::ofstream file(nodes_toml_);
    file << toml;
  }
  master_cache_dir_ = MakeTempDir("master-");
  if (!StartMaster(options_.master_host + ":0")) return;
  ok_ = true;
}

bool Cluster::StartMaster(const std::string& bind) {
  std::vector<std::string> argv = {DaemonPath(),
                                   bind,
                                   nodes_toml_,
                                   "--cache-dir=" + master_cache_dir_,
                                   "--state-dir=" + master_cache_dir_ + "/state",
                                   DaemonTlsFlag(options_, "master", options_.master_host)};
  argv.insert(argv.end(), options_.master_args.begin(), options_.master_args.end());
  master_ = std::make_unique<Daemon>("master", InNetns(options_.master_netns, WithRunAs(std::move(argv))));
  std::string toml = ReadFileOrEmpty(nodes_toml_);
  absl::StatusOr<std::string> master = master_->WaitListening("master", options_.start_timeout);
  if (!master.ok()) {
    ADD_FAILURE() << "the master did not start: " << master.status() << "\nnodes.toml:\n" << toml;
    return false;
  }
  master_addr_ = *master;
  absl::StatusOr<std::string> bridge = master_->WaitListening("bridge", options_.start_timeout);
  if (!bridge.ok()) {
    ADD_FAILURE() << "the bridge did not open: " << bridge.status() << "\nnodes.toml:\n" << toml;
    return false;
  }
  bridge_addr_ = *bridge;
  // The job API opens while the nodes attach; the tests want all of them.
  std::string all = absl::StrCat(node_addrs_.size(), " of ", node_addrs_.size());
  absl::StatusOr<std::string> attached =
      master_->WaitForLine("constellation: nodes attached: " + all, options_.start_timeout);
  if (!attached.ok()) {
    ADD_FAILURE() << "the master did not reach every node: " << attached.status() << "\nnodes.toml:\n" << toml;
    return false;
  }
  return true;
}

void Cluster::CrashMaster() { master_->Crash(); }

bool Cluster::RestartMaster() {
  master_->Stop(absl::Seconds(3));  // a crashed one is only reaped (with anything left in its group)
  // The same addresses: clients and nodes find it where it was.
  std::string toml = ReadFileOrEmpty(nodes_toml_);
  size_t at = toml.find("bridge_bind = \"");
  if (at != std::string::npos) {
    size_t start = at + std::string("bridge_bind = \"").size();
    toml.replace(start, toml.find('"', start) - start, bridge_addr_);
  }
  std::ofstream(nodes_toml_) << toml;
  return StartMaster(master_addr_);
}

Cluster::~Cluster() {
  // The master first (so the nodes see it go), then the nodes.
  if (master_) master_->Stop(absl::Seconds(3));
  for (auto& node : nodes_) node->Stop(absl::Seconds(5));
}

int Cluster::NodeOfOsPid(pid_t os_pid) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (IsDescendantOf(os_pid, nodes_[i]->os_pid())) return static_cast<int>(i);
  }
  return -1;
}

void Cluster::CrashNode(size_t i) { nodes_[i]->Crash(); }

std::string Cluster::ClientTlsFlag() const {
  return options_.insecure ? "--insecure" : "--tls=" + TestPki::Get().Client();
}

std::unique_ptr<Program> Cluster::StartDeploy(const std::string& binary, const DeployOptions& options) {
  RunOptions run;
  std::string path = CdeployPath();
  std::vector<std::string> args = {bridge_addr_, binary};
  args.push_back(options.tls_bundle.empty() ? ClientTlsFlag() : "--tls=" + options.tls_bundle);
  if (options.json) args.push_back("--format=json");
  args.insert(args.end(), options.cdeploy_args.begin(), options.cdeploy_args.end());
  args.push_back("--");
  for (const std::string& a : options.args) args.push_back(a);
  if (!options.cdeploy_prefix.empty()) {
    std::vector<std::string> full = options.cdeploy_prefix;
    full.push_back(path);
    full.insert(full.end(), args.begin(), args.end());
    path = FindProgram(full[0]);
    args.assign(full.begin() + 1, full.end());
  }
  run.args = std::move(args);
  run.format = std::nullopt;  // cdeploy's flag decides; the variable is not set
  run.env = options.env;
  run.stdin_data = options.stdin_data;
  run.close_stdin = options.close_stdin;
  run.timeout = options.timeout;
  return std::make_unique<Program>(path, std::move(run));
}

RunResult Cluster::Deploy(const std::string& binary, const DeployOptions& options) {
  std::string what = absl::StrCat(binary.substr(binary.rfind('/') + 1), " ", absl::StrJoin(options.args, " "));
  std::unique_ptr<Program> program = StartDeploy(binary, options);
  RunChecks checks;
  checks.what = "cdeploy " + what;
  checks.json = options.json;
  checks.group_empty = false;  // cdeploy alone; the nodes are checked below
  checks.context = Describe();
  RunResult result = Finish(*program, checks);
  if (result.exit.timed_out) ADD_FAILURE() << "cdeploy " << what << " timed out\n" << Describe();
  if (options.check_nothing_left) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]->exited()) continue;
      std::vector<pid_t> left = nodes_[i]->WaitLaunchedGone(absl::Seconds(10));
      EXPECT_TRUE(left.empty()) << "cdeploy " << what << ": node " << i << " still runs " << left.size()
                                << " processes 10 s after cdeploy exited, e.g. OS pid " << left[0];
    }
  }
  return result;
}

RunResult Cluster::Deploy(const std::string& binary, std::vector<std::string> args) {
  DeployOptions options;
  options.args = std::move(args);
  return Deploy(binary, options);
}

std::vector<pid_t> Cluster::LaunchedAnywhere() const {
  std::vector<pid_t> all;
  for (const auto& node : nodes_) {
    std::vector<pid_t> some = node->Launched();
    all.insert(all.end(), some.begin(), some.end());
  }
  if (master_) {
    std::vector<pid_t> some = master_->Launched();
    all.insert(all.end(), some.begin(), some.end());
  }
  return all;
}

std::string Cluster::Describe() const {
  std::string text;
  if (master_) text += master_->Describe();
  for (const auto& node : nodes_) text += node->Describe();
  return text;
}

}  // namespace constellation::testing
