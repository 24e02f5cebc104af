#include "tests/cluster/cluster_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

extern char** environ;

namespace constellation::testing {
namespace {

std::string Errno(const char* what) { return absl::StrCat(what, ": ", strerror(errno)); }

std::string Tail(const std::string& text, size_t max = 3000) {
  if (text.size() <= max) return text;
  return absl::StrCat("...", text.substr(text.size() - max));
}

// /proc/<pid>/stat fields after the command name: [0] state, [1] ppid, [2] pgrp.
std::vector<std::string> Stat(pid_t pid) {
  int fd = open(absl::StrCat("/proc/", pid, "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[4096];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return {};
  std::string all(buf, n);
  size_t close_paren = all.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= all.size()) return {};
  return absl::StrSplit(all.substr(close_paren + 2), ' ', absl::SkipEmpty());
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (dirent* entry = readdir(dir)) {
    pid_t pid = atoi(entry->d_name);
    if (pid > 0) pids.push_back(pid);
  }
  closedir(dir);
  return pids;
}

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Where a program is: itself if it has a '/', else the first match on PATH.
std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  for (absl::string_view dir : absl::StrSplit(dirs, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// posix_spawn with stdin from /dev/null, stdout and stderr to the given fds,
// in a new process group, signals back to their defaults.
absl::StatusOr<pid_t> SpawnProcess(const std::vector<std::string>& argv_in, int out_fd, int err_fd) {
  std::vector<std::string> argv_storage = argv_in;
  std::string path = FindProgram(argv_storage[0]);
  std::vector<char*> argv = CStrings(argv_storage);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return absl::InternalError(absl::StrCat("posix_spawn ", path, ": ", strerror(rc)));
  return pid;
}

int ShellCode(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return info.si_status;
  return 128 + info.si_status;
}

}  // namespace

// ---- paths and commands ------------------------------------------------------------------

std::string RunfilePath(const std::string& relative) {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  std::string path = absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "constellation", "/", relative);
  if (access(path.c_str(), F_OK) != 0)
    ADD_FAILURE() << relative << " not found at " << path << " (run under bazel test)";
  return path;
}

std::string DaemonPath() { return RunfilePath("daemon/constellation"); }
std::string CdeployPath() { return RunfilePath("cli/cdeploy"); }
std::string ExamplePath(const std::string& name) { return RunfilePath("examples/" + name); }

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(tmp ? tmp : "/tmp", "/", prefix, "XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << Errno("mkdtemp");
  return templ;
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  CommandResult result;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    result.output = Errno("pipe2");
    return result;
  }
  absl::StatusOr<pid_t> pid = SpawnProcess(argv, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (!pid.ok()) {
    close(out[0]);
    close(err[0]);
    result.output = pid.status().ToString();
    return result;
  }
  absl::Time deadline = absl::Now() + timeout;
  int fds[2] = {out[0], err[0]};
  std::string* into[2] = {&result.output, &result.error};
  bool timed_out = false;
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[2];
    int n = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        which[n] = i;
        p[n++] = {fds[i], POLLIN, 0};
      }
    }
    int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    int rc = poll(p, n, ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      timed_out = true;
      break;
    }
    for (int k = 0; k < n; ++k) {
      if (p[k].revents == 0) continue;
      int i = which[k];
      char buf[65536];
      ssize_t got = read(fds[i], buf, sizeof(buf));
      if (got > 0) {
        into[i]->append(buf, got);
      } else if (got == 0 || errno != EINTR) {
        close(fds[i]);
        fds[i] = -1;
      }
    }
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  if (timed_out) {
    kill(-*pid, SIGKILL);
    ADD_FAILURE() << "command timed out after " << timeout << ": " << absl::StrJoin(argv, " ");
  }
  siginfo_t info{};
  while (waitid(P_PID, *pid, &info, WEXITED) < 0 && errno == EINTR) {
  }
  result.code = ShellCode(info);
  return result;
}

bool IsDescendantOf(pid_t pid, pid_t ancestor) {
  for (int hops = 0; hops < 64 && pid > 1; ++hops) {
    std::vector<std::string> fields = Stat(pid);
    if (fields.size() < 2) return false;
    pid = atoi(fields[1].c_str());
    if (pid == ancestor) return true;
  }
  return false;
}

// ---- Daemon ---------------------------------------------------------------------------------

Daemon::Daemon(std::string name, std::vector<std::string> argv) : name_(std::move(name)) {
  signal(SIGPIPE, SIG_IGN);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << name_ << ": " << Errno("pipe2");
    return;
  }
  absl::StatusOr<pid_t> pid = SpawnProcess(argv, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (!pid.ok()) {
    ADD_FAILURE() << name_ << ": " << pid.status();
    close(out[0]);
    close(err[0]);
    return;
  }
  pid_ = *pid;
  pidfd_ = PidfdOpen(pid_);
  if (pidfd_ < 0) ADD_FAILURE() << name_ << ": " << Errno("pidfd_open");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  reader_ = std::thread([this, o = out[0], e = err[0]] { ReadLoop(o, e); });
}

Daemon::~Daemon() {
  Stop();
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (reader_.joinable()) reader_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (pidfd_ >= 0) close(pidfd_);
}

void Daemon::ReadLoop(int out_fd, int err_fd) {
  int fds[2] = {out_fd, err_fd};
  bool exit_seen = false;
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[4];
    int n = 0;
    for (int fd : fds) {
      if (fd >= 0) p[n++] = {fd, POLLIN, 0};
    }
    p[n++] = {wake_fd_, POLLIN, 0};
    if (!exit_seen && pidfd_ >= 0) p[n++] = {pidfd_, POLLIN, 0};
    int rc = poll(p, n, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) break;
    bool stop = false;
    for (int k = 0; k < n; ++k) {
      if (p[k].revents == 0) continue;
      if (p[k].fd == wake_fd_) {
        stop = true;
        continue;
      }
      if (p[k].fd == pidfd_) {
        exit_seen = true;
        std::lock_guard<std::mutex> lock(mu_);
        cv_.notify_all();
        continue;
      }
      int i = p[k].fd == fds[0] ? 0 : 1;
      char buf[65536];
      ssize_t got = read(fds[i], buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (got > 0) {
        (i == 0 ? out_ : err_).append(buf, got);
      } else {
        close(fds[i]);
        fds[i] = -1;
      }
      cv_.notify_all();
    }
    if (stop) break;
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  std::lock_guard<std::mutex> lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

bool Daemon::exited() const {
  if (pidfd_ < 0) return true;
  pollfd p = {pidfd_, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

absl::StatusOr<std::string> Daemon::WaitForLine(const std::string& prefix, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    for (absl::string_view line : absl::StrSplit(out_, '\n')) {
      // Only complete lines (a line is complete once a '\n' follows it).
      if (absl::StartsWith(line, prefix) && line.data() + line.size() < out_.data() + out_.size()) {
        return std::string(line.substr(prefix.size()));
      }
    }
    if (eof_ || exited()) {
      // Give the reader a moment to drain what the daemon wrote before exiting.
      lock.unlock();
      std::optional<int> code = WaitExit(absl::Seconds(1));
      lock.lock();
      for (absl::string_view line : absl::StrSplit(out_, '\n')) {
        if (absl::StartsWith(line, prefix)) return std::string(line.substr(prefix.size()));
      }
      return absl::UnavailableError(
          absl::StrCat(name_, " exited (", code.has_value() ? absl::StrCat("code ", *code) : "?",
                       ") before printing \"", prefix, "...\"; stdout:\n", Tail(out_), "\nstderr:\n", Tail(err_)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(name_, " did not print \"", prefix, "...\" within ",
                                                      absl::FormatDuration(timeout), "; stdout:\n", Tail(out_),
                                                      "\nstderr:\n", Tail(err_)));
    }
    cv_.wait_for(lock, absl::ToChronoMilliseconds(deadline - absl::Now()));
  }
}

absl::StatusOr<std::string> Daemon::WaitListening(const std::string& what, absl::Duration timeout) {
  absl::StatusOr<std::string> rest = WaitForLine(absl::StrCat("constellation: ", what, " listening on "), timeout);
  if (!rest.ok()) return rest;
  return std::string(absl::StripAsciiWhitespace(*rest));
}

std::optional<int> Daemon::WaitExit(absl::Duration timeout) {
  if (exit_code_.has_value()) return exit_code_;
  if (pidfd_ < 0) return std::nullopt;
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    pollfd p = {pidfd_, POLLIN, 0};
    int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    int rc = poll(&p, 1, ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return std::nullopt;
    break;
  }
  OnExit();
  return exit_code_;
}

void Daemon::OnExit() {
  if (exit_code_.has_value()) return;
  siginfo_t info{};
  int rc;
  do {
    rc = waitid(P_PID, pid_, &info, WEXITED | WNOWAIT);  // stays a zombie: keeps the group id reserved
  } while (rc < 0 && errno == EINTR);
  exit_code_ = rc == 0 ? ShellCode(info) : -1;
}

void Daemon::Crash() {
  if (pid_ > 0 && !exit_code_.has_value()) kill(pid_, SIGKILL);
}

std::vector<pid_t> Daemon::Launched() const {
  std::vector<pid_t> found;
  if (pid_ <= 0) return found;
  std::string group = absl::StrCat(pid_);
  for (pid_t pid : AllPids()) {
    if (pid == pid_) continue;
    std::vector<std::string> fields = Stat(pid);
    if (fields.size() > 2 && fields[2] == group && fields[0] != "Z") found.push_back(pid);
  }
  return found;
}

std::vector<pid_t> Daemon::WaitLaunchedGone(absl::Duration limit) {
  absl::Time until = absl::Now() + limit;
  while (true) {
    ReapOrphans();
    std::vector<pid_t> left = Launched();
    if (left.empty() || absl::Now() > until) return left;
    // These are not our children: nothing to wait on; look again shortly.
    usleep(5000);
  }
}

void Daemon::ReapOrphans() {
  if (pid_ <= 0) return;
  std::string group = absl::StrCat(pid_);
  std::string self = absl::StrCat(getpid());
  for (pid_t pid : AllPids()) {
    if (pid == pid_) continue;
    std::vector<std::string> fields = Stat(pid);
    if (fields.size() > 2 && fields[2] == group && fields[1] == self && fields[0] == "Z") {
      int status;
      waitpid(pid, &status, WNOHANG);
    }
  }
}

void Daemon::Stop(absl::Duration grace) {
  if (pid_ <= 0 || reaped_) return;
  if (!WaitExit(absl::ZeroDuration()).has_value()) {
    kill(pid_, SIGTERM);
    if (!WaitExit(grace).has_value()) {
      // Not a failure here: DaemonCli.DaemonsExitOnSigterm checks shutdown.
      std::cerr << name_ << " did not exit within " << grace << " of SIGTERM; SIGKILLing it\n";
      kill(pid_, SIGKILL);
      WaitExit(absl::Seconds(30));
    }
  }
  // Whatever the daemon left behind in its group (the leader is an unreaped
  // zombie, so the group id is still ours).
  absl::Time until = absl::Now() + absl::Seconds(20);
  while (true) {
    kill(-pid_, SIGKILL);
    ReapOrphans();
    if (Launched().empty() || absl::Now() > until) break;
    usleep(5000);
  }
  std::vector<pid_t> left = Launched();
  if (!left.empty()) ADD_FAILURE() << name_ << ": " << left.size() << " processes survive SIGKILL, e.g. " << left[0];
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

std::string Daemon::stdout_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return out_;
}

std::string Daemon::stderr_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_;
}

std::string Daemon::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string state = exit_code_.has_value() ? absl::StrCat("exited ", *exit_code_) : "running";
  return absl::StrCat("--- ", name_, " (OS pid ", pid_, ", ", state, ")\nstdout:\n", Tail(out_, 1500), "\nstderr:\n",
                      Tail(err_, 3000), "\n");
}

// ---- Cluster ---------------------------------------------------------------------------------

ClusterOptions ThreeNodeLoopback() {
  ClusterOptions options;
  options.nodes = {{"2 GiB", "2", true}, {"1 GiB", "1", false}, {"512 MiB", "0.5", false}};
  return options;
}

namespace {
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
    nodes_.push_back(std::make_unique<Daemon>(
        absl::StrCat("node ", i), InNetns(spec.netns, {DaemonPath(), spec.host + ":0", "--cache-dir=" + cache})));
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
  master_ = std::make_unique<Daemon>(
      "master", InNetns(options_.master_netns,
                        {DaemonPath(), options_.master_host + ":0", nodes_toml_, "--cache-dir=" + master_cache_dir_}));
  absl::StatusOr<std::string> master = master_->WaitListening("master", options_.start_timeout);
  if (!master.ok()) {
    ADD_FAILURE() << "the master did not start: " << master.status() << "\nnodes.toml:\n" << toml;
    return;
  }
  master_addr_ = *master;
  absl::StatusOr<std::string> bridge = master_->WaitListening("bridge", options_.start_timeout);
  if (!bridge.ok()) {
    ADD_FAILURE() << "the bridge did not open: " << bridge.status() << "\nnodes.toml:\n" << toml;
    return;
  }
  bridge_addr_ = *bridge;
  std::string err = master_->stderr_text();
  if (absl::StrContains(err, "nodes reachable")) {
    ADD_FAILURE() << "the master did not reach every node:\n" << err << "\nnodes.toml:\n" << toml;
    return;
  }
  ok_ = true;
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

std::unique_ptr<Program> Cluster::StartDeploy(const std::string& binary, const DeployOptions& options) {
  RunOptions run;
  std::string path = CdeployPath();
  std::vector<std::string> args = {bridge_addr_, binary};
  if (options.json) args.push_back("--format=json");
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
  RunResult result;
  result.exit = program->Wait();
  result.out = program->stdout_text();
  result.err = program->stderr_text();
  result.lines = program->lines();
  if (options.json) {
    result.trace = ParseTrace(result.lines);
    EXPECT_TRUE(result.trace.errors.empty()) << "cdeploy " << what << " broke the JSON format's invariants:\n"
                                             << result.trace.Dump() << "cdeploy's stderr:\n"
                                             << Tail(result.err) << "\n"
                                             << Describe();
    if (result.exit.exited && !result.exit.timed_out && result.trace.errors.empty()) {
      EXPECT_EQ(result.exit.code, result.trace.ExpectedBridgeCode())
          << "cdeploy " << what << ": the exit code does not follow the first failure:\n"
          << result.trace.Dump();
    }
  }
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

// ---- NetnsLab --------------------------------------------------------------------------------

namespace {
bool AddressInUse(const std::string& subnet) {
  CommandResult addrs = RunCommand({"ip", "-4", "addr", "show"});
  CommandResult routes = RunCommand({"ip", "-4", "route", "show"});
  std::string prefix = subnet + ".";
  return absl::StrContains(addrs.output, prefix) || absl::StrContains(routes.output, prefix);
}
}  // namespace

namespace {
// The pid in a name made by an earlier NetnsLab ("cx<pid>-..." or "cx<pid>r"), 0 if none.
pid_t TagPid(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "cx")) return 0;
  pid_t pid = 0;
  size_t i = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') pid = pid * 10 + (name[i++] - '0');
  if (i == 0 || i >= name.size() || (name[i] != '-' && name[i] != 'r')) return 0;
  return pid;
}

// Namespaces and root links left by runs that were killed before their
// destructors ran (their pid is gone).
void RemoveStale() {
  CommandResult netns = RunCommand({"ip", "netns", "list"});
  for (absl::string_view line : absl::StrSplit(netns.output, '\n', absl::SkipEmpty())) {
    std::string name(line.substr(0, line.find(' ')));
    pid_t pid = TagPid(name);
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) RunCommand({"ip", "netns", "del", name});
  }
  CommandResult links = RunCommand({"ip", "-o", "link", "show"});
  for (absl::string_view line : absl::StrSplit(links.output, '\n', absl::SkipEmpty())) {
    // "12: cx123r@if11: <...": the name is the second field, up to '@' or ':'.
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 2) continue;
    absl::string_view name = fields[1].substr(0, fields[1].find_first_of("@:"));
    pid_t pid = TagPid(name);
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) RunCommand({"ip", "link", "del", std::string(name)});
  }
}
}  // namespace

NetnsLab::NetnsLab(int count) {
  RemoveStale();
  // Unique per run: the test's pid (names of dead runs were removed above).
  tag_ = absl::StrCat("cx", getpid());  // <= 9 characters: link names stay within 15
  // A /24 in 10.77.0.0/16 that nothing in the root namespace uses.
  std::random_device random;
  int third = static_cast<int>((getpid() + random()) % 250) + 1;
  for (int tries = 0; tries < 250; ++tries, third = third % 250 + 1) {
    subnet_ = absl::StrCat("10.77.", third);
    if (!AddressInUse(subnet_)) break;
  }
  switch_ns_ = tag_ + "-sw";
  root_link_ = tag_ + "r";
  if (!Run({"ip", "netns", "add", switch_ns_})) return;
  if (!Run({"ip", "-n", switch_ns_, "link", "add", "br0", "type", "bridge"})) return;
  if (!Run({"ip", "-n", switch_ns_, "link", "set", "br0", "up"})) return;
  for (int i = 0; i < count; ++i) {
    std::string ns = absl::StrCat(tag_, "-h", i);
    if (!Run({"ip", "netns", "add", ns})) return;
    namespaces_.push_back(ns);
    std::string host_end = absl::StrCat(tag_, "a", i), switch_end = absl::StrCat(tag_, "b", i);
    if (!Run({"ip", "link", "add", host_end, "type", "veth", "peer", "name", switch_end})) return;
    if (!Run({"ip", "link", "set", host_end, "netns", ns})) return;
    if (!Run({"ip", "link", "set", switch_end, "netns", switch_ns_})) return;
    if (!Run({"ip", "-n", switch_ns_, "link", "set", switch_end, "master", "br0"})) return;
    if (!Run({"ip", "-n", switch_ns_, "link", "set", switch_end, "up"})) return;
    if (!Run({"ip", "-n", ns, "addr", "add", ip(i) + "/24", "dev", host_end})) return;
    if (!Run({"ip", "-n", ns, "link", "set", host_end, "up"})) return;
    if (!Run({"ip", "-n", ns, "link", "set", "lo", "up"})) return;
  }
  std::string root_switch_end = tag_ + "s";
  if (!Run({"ip", "link", "add", root_link_, "type", "veth", "peer", "name", root_switch_end})) return;
  if (!Run({"ip", "link", "set", root_switch_end, "netns", switch_ns_})) return;
  if (!Run({"ip", "-n", switch_ns_, "link", "set", root_switch_end, "master", "br0"})) return;
  if (!Run({"ip", "-n", switch_ns_, "link", "set", root_switch_end, "up"})) return;
  if (!Run({"ip", "addr", "add", root_ip() + "/24", "dev", root_link_})) return;
  if (!Run({"ip", "link", "set", root_link_, "up"})) return;
  ok_ = true;
}

NetnsLab::~NetnsLab() {
  // The root namespace's veth (its peer goes with it), then the namespaces
  // (their veth ends and the bridge go with them).
  RunCommand({"ip", "link", "del", root_link_});
  for (const std::string& ns : namespaces_) RunCommand({"ip", "netns", "del", ns});
  RunCommand({"ip", "netns", "del", switch_ns_});
  std::vector<std::string> left = Leftovers();
  EXPECT_TRUE(left.empty()) << "left behind: " << absl::StrJoin(left, ", ");
}

bool NetnsLab::Run(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv);
  if (r.code == 0) return true;
  error_ = absl::StrCat("`", absl::StrJoin(argv, " "), "` failed (", r.code, "): ", r.output, r.error);
  return false;
}

std::string NetnsLab::ip(int i) const { return absl::StrCat(subnet_, ".", i + 1); }
std::string NetnsLab::root_ip() const { return subnet_ + ".254"; }

std::vector<std::string> NetnsLab::Leftovers() const {
  std::vector<std::string> left;
  CommandResult netns = RunCommand({"ip", "netns", "list"});
  CommandResult links = RunCommand({"ip", "-o", "link", "show"});
  for (absl::string_view line : absl::StrSplit(netns.output, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, tag_)) left.push_back(std::string(line));
  }
  for (absl::string_view line : absl::StrSplit(links.output, '\n', absl::SkipEmpty())) {
    if (absl::StrContains(line, tag_)) left.push_back(std::string(line.substr(0, 60)));
  }
  return left;
}

}  // namespace constellation::testing
