#pragma once

// Starting a process that will call init() and find a pb::SpawnInfo hand-off:
// used by spawn() in local mode and by the node daemon in cluster mode.

#include <sys/types.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/local.pb.h"

namespace constellation::process_internal {

// Names the memfd holding a spawned process's pb::SpawnInfo.
inline constexpr char kInitEnv[] = "CONSTELLATION_INIT";
// Names the socket of a zygote the node daemon executed (zygote.h): its
// init() serves launches instead of starting a process. Never passed on from
// a launch's own environment, nor kInitEnv.
inline constexpr char kZygoteFdEnv[] = "CONSTELLATION_ZYGOTE_FD";

struct LaunchOptions {
  std::string path;               // the executable
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "K=V"; kInitEnv is replaced
  int stdin_fd = -1;              // -1: /dev/null
};

// Writes `info` to a memfd and posix_spawns the executable with
// CONSTELLATION_INIT naming it. Only the memfd, `info.listen_fd()` and stdin
// are inherited (dup2 onto itself clears close-on-exec in the child only, so
// spawns racing on other threads never inherit them); stdout is /dev/null
// until the process's init() sets up its monitor; stderr is inherited so a
// failure to start is seen. Signals are unblocked and SIGCHLD is default in
// the child. Returns the OS pid. Thread-safe.
absl::StatusOr<pid_t> LaunchWithHandOff(const LaunchOptions& options, const pb::SpawnInfo& info);

// Whether an environment entry ("K=V") is kInitEnv's or kZygoteFdEnv's,
// which only the launcher sets.
bool IsLaunchMarker(const std::string& entry);

// posix_spawns `options` as LaunchWithHandOff does, with `marker` ("K=V")
// added to its environment and the fds in `inherit` (-1s skipped) kept open
// in the child, at the same numbers. Thread-safe.
absl::StatusOr<pid_t> SpawnInheriting(const LaunchOptions& options, std::initializer_list<int> inherit,
                                      const std::string& marker);

// In a started process: reads the hand-off from the memfd named in `memfd_text`.
absl::StatusOr<pb::SpawnInfo> ReadSpawnInfo(const char* memfd_text);
// The same from an fd (closed here).
absl::StatusOr<pb::SpawnInfo> ReadSpawnInfoFd(int memfd);

// Writes `info` to a new memfd (CLOEXEC) for a child to read; the caller closes it.
absl::StatusOr<int> WriteSpawnInfo(const pb::SpawnInfo& info);

}  // namespace constellation::process_internal
