#include "lib/process/runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/net/handshake.h"
#include "lib/process/capacity.h"
#include "lib/process/cgroup.h"
#include "lib/process/data_port.h"
#include "lib/process/launch.h"
#include "lib/process/local_bridge.h"
#include "lib/process/local_socket.h"
#include "lib/process/malloc_tuning.h"
#include "lib/process/process_start.h"
#include "lib/process/proto_convert.h"
#include "lib/process/resources_query.h"
#include "lib/process/runtime_state.h"
#include "lib/process/spawn_launch.h"
#include "lib/process/zygote.h"
#include "proto/local.pb.h"

namespace constellation {
namespace process_internal {

using internal::CgroupSetup;
using internal::ConnectLocal;
using internal::CreateCgroupBase;
using internal::kCapacityEnv;
using internal::kCgroupsEnv;
using internal::ListenLocal;
using internal::LocalCapacity;
using internal::LocalListener;
using internal::LocalSpawner;
using internal::OutputFormat;
using internal::ParseOutputFormat;
using internal::ReadCgroupLayout;
using internal::RemoveCgroupBase;
using internal::RemoveLocalListener;
using internal::RunLocalBridge;

namespace {

Runtime& g_runtime = MutableRuntime();

int CountThreads() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 1;
  int n = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

// Channels and connections need fds (a socket and an epoll set per peer):
// take the most the hard limit allows, for this process and all it starts.
void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

// The bridge's spawn service: the machine as a one-node cluster, with the
// root already in it. Exits with a clear message when the root cannot fit.
// The spawner owns the zygote (when there is one): destroying it in the
// bridge ends the zygote, in the root only closes the root's copy.
std::unique_ptr<LocalSpawner> MakeLocalSpawner(const Resources& root_resources, std::unique_ptr<Zygote> zygote) {
  absl::StatusOr<Resources> capacity = LocalCapacity(getenv(kCapacityEnv));
  if (!capacity.ok()) Fail(std::string(capacity.status().message()));
  std::shared_ptr<Zygote> shared = std::move(zygote);
  auto spawner = std::make_unique<LocalSpawner>(
      *capacity, [shared](const Pid& parent, const Resources& resources, const pb::SpawnRequest& request) {
        // Runs in the bridge, once g_runtime.cgroups is set.
        LocalLaunchContext context{g_runtime.bridge_name, g_runtime.argv, g_runtime.cgroups, g_runtime.secret,
                                   shared.get()};
        return LaunchLocal(context, parent, resources, request);
      });
  absl::Status root = spawner->AddRoot(g_runtime.self, root_resources);
  if (!root.ok()) Fail(std::string(root.message()));
  return spawner;
}

void InitForked(const ZygoteStart& start, const Resources& requested);

void InitTop(const Resources& resources) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(getenv("CONSTELLATION_FORMAT"));
  if (!format.ok()) Fail(std::string(format.status().message()));
  absl::StatusOr<ZygoteMode> zygote_mode = ParseZygoteMode(getenv(kZygoteEnv));
  if (!zygote_mode.ok()) Fail(std::string(zygote_mode.status().message()));
  // The zygote first: it must hold the program's state as it entered init()
  // and nothing the runtime makes below. Spawned children return here.
  std::unique_ptr<Zygote> zygote;
  if (*zygote_mode != ZygoteMode::kOff) {
    ZygoteStart start = StartZygote(ReadArgv());
    if (start.child) return InitForked(start, resources);
    zygote = std::move(start.zygote);
  }
  // The spawner takes the zygote; it lives as long as the bridge.
  Zygote* spares = *zygote_mode == ZygoteMode::kOn ? zygote.get() : nullptr;
  absl::StatusOr<DataPort> port = BindDataPort();
  if (!port.ok()) Fail(std::string(port.status().message()));
  g_runtime.self = port->pid;
  g_runtime.resources = resources;
  // The program's data-plane secret: made here, before the bridge is forked,
  // so the bridge hands it to every process it launches (SpawnInfo).
  g_runtime.secret = net::NewDeploymentSecret();
  g_runtime.argv = ReadArgv();
  // Everything that can refuse to start comes before the cgroup base and the
  // bridge's socket directory exist, so a refusal leaves nothing behind.
  std::unique_ptr<LocalSpawner> spawner = MakeLocalSpawner(resources, std::move(zygote));
  absl::StatusOr<LocalListener> bridge_listen = ListenLocal("bridge");
  if (!bridge_listen.ok()) Fail(std::string(bridge_listen.status().message()));
  g_runtime.bridge_name = bridge_listen->path;
  CgroupSetup cgroups = CreateCgroupBase(ReadCgroupLayout(), getenv(kCgroupsEnv));
  if (absl::IsInvalidArgument(cgroups.why_not)) {
    RemoveLocalListener(*bridge_listen);
    Fail(std::string(cgroups.why_not.message()));
  }
  if (!cgroups.why_not.ok()) {
    fprintf(stderr,
            "constellation: warning: processes' resources are not enforced with cgroups (%s); memory is limited "
            "with setrlimit(RLIMIT_DATA) and CPU is not limited\n",
            std::string(cgroups.why_not.message()).c_str());
  }
  g_runtime.cgroups = cgroups.base;
  if (spares != nullptr) spares->KeepSpares(cgroups.base);
  int root_conn[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, root_conn) != 0) {
    RemoveCgroupBase(g_runtime.cgroups);
    RemoveLocalListener(*bridge_listen);
    Die("socketpair failed");
  }

  fflush(nullptr);
  pid_t child = fork();
  if (child < 0) {
    RemoveLocalListener(*bridge_listen);
    Die("fork failed");
  }
  if (child > 0) {
    // The original process, the one the shell waits on, becomes the bridge.
    close(port->fd);
    close(root_conn[1]);
    int code =
        RunLocalBridge(bridge_listen->fd, root_conn[0], g_runtime.self, *format, std::move(spawner), g_runtime.cgroups);
    RemoveCgroupBase(g_runtime.cgroups);
    RemoveLocalListener(*bridge_listen);
    fflush(nullptr);
    _exit(code);
  }
  spawner.reset();
  close(bridge_listen->fd);
  close(root_conn[0]);
  StartMonitoredProcess(root_conn[1], port->fd);
}

// A process started by spawn() (local mode) or by a node daemon (cluster
// mode). Runs the spawned function and exits; a deployment's root process
// (no function) returns into main().
void InitFromHandOff(const pb::SpawnInfo* info, const Resources& requested) {
  ApplyHandOff(*info);
  g_runtime.argv = ReadArgv();
  absl::StatusOr<int> bridge_fd = ConnectLocal(info->bridge());
  if (!bridge_fd.ok()) Fail(std::string(bridge_fd.status().message()));
  if (!info->has_call()) g_runtime.resources = requested;  // a root: what its init() asked for
  StartMonitoredProcess(*bridge_fd, info->listen_fd());
  if (!info->has_call()) return;
  RunSpawnedFunction(info->call(), g_runtime.parent);
  exit(0);
}

void InitSpawned(const char* init_fd, const Resources& requested) {
  absl::StatusOr<pb::SpawnInfo> info = ReadSpawnInfo(init_fd);
  unsetenv(kInitEnv);
  if (!info.ok()) Fail(std::string(info.status().message()));
  InitFromHandOff(&*info, requested);
}

// A child the zygote forked: the same as InitSpawned, with the hand-off's
// fds passed by the zygote instead of inherited through exec.
void InitForked(const ZygoteStart& start, const Resources& requested) {
  if (start.spare_fd >= 0) {
    pb::SpawnInfo info = RunSpare(start);
    RunSpawnedFunction(info.call(), g_runtime.parent);
    exit(0);
  }
  absl::StatusOr<pb::SpawnInfo> info = ReadSpawnInfoFd(start.memfd);
  if (!info.ok()) Fail(std::string(info.status().message()));
  info->set_listen_fd(start.listen_fd);
  InitFromHandOff(&*info, requested);
}

// A zygote a node daemon executed (Zygote::Exec): serves its launches; only
// the children it forks return, each into init()'s spawned path.
void InitExecZygote(const char* sock_text, const Resources& requested) {
  int sock = -1;
  int type = 0;
  socklen_t size = sizeof(type);
  if (!absl::SimpleAtoi(sock_text, &sock) || sock < 0 || getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &size) != 0 ||
      type != SOCK_SEQPACKET) {
    Fail(absl::StrCat(kZygoteFdEnv, "=", sock_text, " is not a zygote's socket (only a node daemon sets it)"));
  }
  unsetenv(kZygoteFdEnv);  // its children's environment is a launch's
  InitForked(ServeExecZygote(sock), requested);
}

}  // namespace

}  // namespace process_internal

void init(Resources resources) {
  using namespace process_internal;
  if (Initialized()) Die("init() called twice: call it once, first in main()");
  if (CountThreads() > 1) {
    Die("init() called after threads were started: call it first in main(), before anything starts a thread");
  }
  RaiseFileLimit();
  TuneMalloc();
  if (getenv(kResourcesQueryEnv) != nullptr) {  // a master asks before placing this root
    fputs(FormatResourcesAnswer(resources).c_str(), stdout);
    fflush(stdout);
    _exit(0);
  }
  if (const char* zygote_fd = getenv(kZygoteFdEnv); zygote_fd != nullptr) {
    InitExecZygote(zygote_fd, resources);
    return;
  }
  const char* init_fd = getenv(kInitEnv);
  if (init_fd != nullptr) {
    InitSpawned(init_fd, resources);
  } else {
    InitTop(resources);
  }
}

Pid pid() {
  process_internal::RequireInit("pid()");
  return process_internal::runtime().self;
}

Resources resources() {
  process_internal::RequireInit("resources()");
  return process_internal::runtime().resources;
}

}  // namespace constellation
