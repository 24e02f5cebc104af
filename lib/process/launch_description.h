#pragma once

// What a new process is started with, built in one place for local mode (the
// bridge launching a spawn()ed child) and cluster mode (a node daemon
// launching what the master placed): its data port, its hand-off
// (pb::SpawnInfo) and how to exec it (LaunchOptions). Only the inputs differ:
// local mode re-executes /proc/self/exe, a node runs a cached binary with
// CONSTELLATION=fabric.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/process/data_port.h"
#include "lib/process/launch.h"
#include "proto/local.pb.h"

namespace constellation::process_internal {

// What stays the same for every process one bridge or node launches.
struct LaunchSite {
  uint32_t ipv4 = 0x7f000001;  // where processes bind their data ports (host byte order)
  std::string bridge;          // the socket processes connect to (SpawnInfo.bridge)
  pb::CgroupBase cgroups;
  bool fabric = false;  // cluster mode: SpawnInfo.fabric and CONSTELLATION=fabric
};

// One process to launch.
struct LaunchWhat {
  std::string path;                       // the executable
  std::vector<std::string> argv;          // empty: default_argv
  std::vector<std::string> default_argv;  // empty too: {path}
  std::vector<std::string> env;           // "K=V"
  std::optional<pb::Pid> parent;          // none: a deployment's root
  pb::Resources resources;
  std::optional<pb::FunctionCall> call;  // none: the root, which returns into main()
  std::string secret;                    // the deployment's data-plane secret
  int stdin_fd = -1;                     // -1: /dev/null
};

// A launch described and its data port bound. `port.fd` is open until
// Launch() (or the destructor) closes it.
struct LaunchDescription {
  DataPort port;
  pb::SpawnInfo info;
  LaunchOptions options;

  LaunchDescription() = default;
  LaunchDescription(LaunchDescription&& other) noexcept;
  LaunchDescription& operator=(LaunchDescription&& other) noexcept;
  ~LaunchDescription();
};

// Binds the process's data port on `site.ipv4` (its Pid is then known) and
// describes its launch.
absl::StatusOr<LaunchDescription> DescribeLaunch(const LaunchSite& site, LaunchWhat what);

// Starts the described process (LaunchWithHandOff) and closes the port's fd
// here: the child's copy is the only one, so the port dies with the child.
// Returns the OS pid (the monitor's, once init() runs). Thread-safe.
absl::StatusOr<pid_t> Launch(LaunchDescription& description);

}  // namespace constellation::process_internal
