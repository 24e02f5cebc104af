#include "lib/process/process_start.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>

#include "absl/strings/str_cat.h"
#include "lib/net/data_plane.h"
#include "lib/process/cgroup.h"
#include "lib/process/control_link.h"
#include "lib/process/launch.h"
#include "lib/process/local_socket.h"
#include "lib/process/monitor.h"
#include "lib/process/monitor_table.h"
#include "lib/process/proto_convert.h"
#include "lib/process/runtime_state.h"

namespace constellation::process_internal {

using internal::CgroupLeaf;
using internal::ConnectLocal;
using internal::FromProto;
using internal::JoinCgroup;
using internal::RunMonitor;
using internal::SendLocal;
using internal::ToProto;

namespace {

Runtime& g_runtime = MutableRuntime();

// Starts the data plane, connected to the system's verdicts: each peer it
// has is watched through the monitor connection, and the ProcessGone answers
// (read on the data plane's loop) end the channels to it and go to the
// monitors and links (monitor_table.h), which share the watches; what the exit
// flush could not deliver makes the monitor report a failed exit. Last in
// init(): it starts the data plane's thread, and nothing may fork after that.
void StartDataPlaneWithVerdicts(int listen_fd, int control_fd) {
  InstallControlLink(control_fd, g_runtime.fabric);
  InstallMonitorTable([](const Pid& pid) { DefaultControlLink().Watch(pid); });
  DefaultControlLink().SetVerdictHandler(
      [](const Pid& pid, const pb::ProcessGone& gone) { DefaultMonitorTable().OnGone(DownFromGone(pid, gone)); });
  DefaultControlLink().SetGoneHandler([](const Pid& pid, absl::Status why, bool node_lost) {
    net::DefaultDataPlane().OnGone(pid, std::move(why), node_lost);
  });
  // The data plane's peers and the monitors share one watch per pid.
  std::function<void(const Pid&)> watch = [](const Pid& pid) { DefaultMonitorTable().Watch(pid); };
  net::StartDataPlane(listen_fd, g_runtime.self, g_runtime.secret, std::move(watch),
                      [](const std::vector<net::DataPlane::Undelivered>& undelivered) {
                        uint64_t bytes = 0;
                        for (const net::DataPlane::Undelivered& u : undelivered) bytes += u.bytes;
                        DefaultControlLink().ReportUndelivered(bytes, static_cast<uint32_t>(undelivered.size()));
                      });
  net::DefaultDataPlane().WatchReadable(control_fd, [] { DefaultControlLink().OnReadable(); });
}

// The fds between a monitor and its user process.
struct MonitorPipes {
  int out[2];
  int err[2];
  int control[2];  // SOCK_SEQPACKET: the process's packets for the bridge, and the replies
};

MonitorPipes MakeMonitorPipes() {
  MonitorPipes p;
  if (pipe2(p.out, O_CLOEXEC) != 0 || pipe2(p.err, O_CLOEXEC) != 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p.control) != 0) {
    Die("cannot create the monitor's pipes");
  }
  return p;
}

// In the user process, right after the fork: dies with its monitor, and its
// stdout and stderr become the monitor's pipes.
void BecomeMonitored(pid_t monitor, const MonitorPipes& p) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != monitor) _exit(1);
  dup2(p.out[1], STDOUT_FILENO);
  dup2(p.err[1], STDERR_FILENO);
  for (int fd : {p.out[0], p.out[1], p.err[0], p.err[1], p.control[0]}) close(fd);
}

// In the user process, last: its output line-buffered (a pipe makes stdio
// buffer whole blocks; lines should reach the bridge as written), then the
// data plane.
void StartMonitored(const MonitorPipes& p, int listen_fd) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  g_runtime.monitor_fd = p.control[1];
  MarkInitialized();
  StartDataPlaneWithVerdicts(listen_fd, p.control[1]);
}

// In the monitor: tells the bridge the process started, then monitors it
// until it exits.
[[noreturn]] void RunAsMonitor(pid_t child, const MonitorPipes& p, int bridge_fd, CgroupLeaf leaf) {
  close(p.out[1]);
  close(p.err[1]);
  close(p.control[1]);
  signal(SIGINT, SIG_IGN);  // Ctrl-C reaches the whole group: report the child's death instead
  pb::LocalMessage started;
  started.mutable_child_started()->set_os_pid(child);
  SendLocal(bridge_fd, started).IgnoreError();
  RunMonitor({child, p.out[0], p.err[0], p.control[0], bridge_fd},
             {g_runtime.resources, std::move(leaf), g_runtime.cgroups}, g_runtime.self);
  _exit(0);
}

void SayHello(int bridge_fd) {
  pb::LocalMessage hello;
  *hello.mutable_hello()->mutable_pid() = ToProto(g_runtime.self);
  hello.mutable_hello()->set_monitor_os_pid(getpid());
  if (!SendLocal(bridge_fd, hello).ok()) Fail("lost the bridge at start-up");
}

void WarnUnenforced(const absl::Status& why) {
  fprintf(stderr, "constellation: cannot make this process's cgroup, its resources are not enforced: %s\n",
          why.ToString().c_str());
}

// The spare's user process: in its leaf (when there is one) and on the
// monitor's pipes, waits for the spawn; then applies it and starts as a
// process StartMonitoredProcess forked would. Returns the hand-off.
pb::SpawnInfo RunSpareChild(pid_t monitor, const MonitorPipes& p, const CgroupLeaf& leaf) {
  BecomeMonitored(monitor, p);
  absl::Status joined = leaf.enabled() ? JoinCgroup(leaf.memory_dir(), leaf.cpu_dir(), Resources()) : absl::OkStatus();
  std::vector<std::string> argv = ReadArgv();
  int memfd = -1, listen_fd = -1;
  if (!AwaitSpawn(p.control[1], &memfd, &listen_fd)) _exit(0);  // the spare ended unused
  RestoreProgramSignals();
  absl::StatusOr<pb::SpawnInfo> info = ReadSpawnInfoFd(memfd);
  if (!info.ok()) Fail(std::string(info.status().message()));
  ApplyHandOff(*info);
  g_runtime.argv = std::move(argv);
  if (!leaf.enabled()) joined = JoinCgroup("", "", g_runtime.resources);  // the setrlimit fallback
  if (!joined.ok()) fprintf(stderr, "constellation: resources not enforced: %s\n", joined.ToString().c_str());
  StartMonitored(p, listen_fd);
  return *std::move(info);
}

// The spare, once its spawn came: limits the leaf (unless its guess was
// right), says hello, lets the user process go (handing it the spawn's fds)
// and becomes its monitor.
[[noreturn]] void StartSpareMonitor(pid_t child, const MonitorPipes& p, CgroupLeaf leaf,
                                    const std::optional<Resources>& limited_to, int memfd, int listen_fd) {
  RestoreProgramSignals();
  int copy = fcntl(memfd, F_DUPFD_CLOEXEC, 0);
  absl::StatusOr<pb::SpawnInfo> info = ReadSpawnInfoFd(copy);  // closes the copy
  if (!info.ok()) Fail(std::string(info.status().message()));
  ApplyHandOff(*info);
  const Resources& wanted = g_runtime.resources;
  if (!limited_to || limited_to->mem != wanted.mem || limited_to->cpu != wanted.cpu) {
    if (absl::Status limited = leaf.SetLimits(wanted); !limited.ok()) {
      fprintf(stderr,
              "constellation: cannot set this process's cgroup limits, its resources are not enforced as asked: %s\n",
              limited.ToString().c_str());
    }
  }
  absl::StatusOr<int> bridge_fd = ConnectLocal(g_runtime.bridge_name);
  if (!bridge_fd.ok()) Fail(std::string(bridge_fd.status().message()));
  SayHello(*bridge_fd);
  if (!SendSpawn(p.control[0], memfd, listen_fd)) Fail("the spare's process is gone");
  close(memfd);
  close(listen_fd);
  RunAsMonitor(child, p, *bridge_fd, std::move(leaf));
}

// The zygote ended with the spare unused: its process and leaf go too, and
// the base if the launcher died and this was the last leaf (a monitor does
// the same: lib/process/monitor.h). A launcher that ended the zygote and
// goes on (a node daemon ending a deployment's) keeps its base.
[[noreturn]] void EndUnusedSpare(pid_t child, CgroupLeaf leaf, const pb::CgroupBase& base, bool launcher_gone) {
  kill(child, SIGKILL);
  while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  leaf.Remove();
  if (launcher_gone) internal::RemoveCgroupBaseIfUnused(base);  // EBUSY while other leaves remain
  _exit(0);
}

}  // namespace

void Die(const std::string& message) {
  fprintf(stderr, "constellation: %s\n", message.c_str());
  fflush(stderr);
  abort();
}

void Fail(const std::string& message) {
  fprintf(stderr, "constellation: %s\n", message.c_str());
  fflush(stderr);
  _exit(2);
}

std::vector<std::string> ReadArgv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    argv.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return argv;
}

void ApplyHandOff(const pb::SpawnInfo& info) {
  absl::StatusOr<Pid> self = FromProto(info.self());
  absl::StatusOr<Pid> parent = info.has_parent() ? FromProto(info.parent()) : Pid();
  if (!self.ok() || !parent.ok()) Fail("malformed spawn hand-off");
  g_runtime.self = *self;
  g_runtime.parent = *parent;
  g_runtime.resources = FromProto(info.resources());
  g_runtime.bridge_name = info.bridge();
  g_runtime.fabric = info.fabric();
  g_runtime.cgroups = info.cgroups();
  g_runtime.secret = info.secret();
}

void StartMonitoredProcess(int bridge_fd, int listen_fd) {
  SayHello(bridge_fd);
  // The process's cgroup, made by its monitor-to-be; a failure leaves it unenforced, loudly.
  absl::StatusOr<CgroupLeaf> leaf =
      CgroupLeaf::Create(g_runtime.cgroups, absl::StrCat("p", getpid()), g_runtime.resources);
  if (!leaf.ok()) {
    WarnUnenforced(leaf.status());
    leaf = CgroupLeaf();
  }
  MonitorPipes p = MakeMonitorPipes();
  fflush(nullptr);
  pid_t monitor = getpid();
  pid_t child = fork();
  if (child < 0) Die("fork failed");
  if (child > 0) {
    close(listen_fd);
    RunAsMonitor(child, p, bridge_fd, *std::move(leaf));
  }
  close(bridge_fd);
  BecomeMonitored(monitor, p);
  // Into its own cgroup before any user code runs (or the setrlimit fallback).
  absl::Status joined = JoinCgroup(leaf->memory_dir(), leaf->cpu_dir(), g_runtime.resources);
  if (!joined.ok()) fprintf(stderr, "constellation: resources not enforced: %s\n", joined.ToString().c_str());
  StartMonitored(p, listen_fd);
}

pb::SpawnInfo RunSpare(const ZygoteStart& start) {
  // The leaf is made and joined now, while no spawn waits: on cgroup v1 a
  // move can wait out an RCU grace period (docs/resources.md).
  absl::StatusOr<CgroupLeaf> leaf = CgroupLeaf::Create(start.base, absl::StrCat("p", getpid()));
  absl::Status unenforced = leaf.ok() ? absl::OkStatus() : leaf.status();
  if (!leaf.ok()) leaf = CgroupLeaf();
  // Limited ahead with the last spawn's resources: a spawn that asks the
  // same (most do) writes nothing on its way. A failure here is retried then.
  std::optional<Resources> limited_to;
  if (start.expected && leaf->enabled() && leaf->SetLimits(FromProto(*start.expected)).ok()) {
    limited_to = FromProto(*start.expected);
  }
  MonitorPipes p = MakeMonitorPipes();
  fflush(nullptr);
  pid_t monitor = getpid();
  pid_t child = fork();
  if (child < 0) Die("fork failed");
  if (child == 0) {
    close(start.spare_fd);
    return RunSpareChild(monitor, p, *leaf);
  }
  int memfd = -1, listen_fd = -1;
  bool launcher_gone = false;
  if (!AwaitSpawn(start.spare_fd, &memfd, &listen_fd, p.control[0], &launcher_gone)) {
    EndUnusedSpare(child, *std::move(leaf), start.base, launcher_gone || !start.executed);
  }
  close(start.spare_fd);
  if (!unenforced.ok()) WarnUnenforced(unenforced);
  StartSpareMonitor(child, p, *std::move(leaf), limited_to, memfd, listen_fd);
}

}  // namespace constellation::process_internal
