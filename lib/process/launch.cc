#include "lib/process/launch.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace constellation::process_internal {
namespace {

// Out of fds or memory is the machine's state, not a bug: RESOURCE_EXHAUSTED.
absl::Status Errno(absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(errno));
  if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EAGAIN) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::StatusOr<int> WriteMemfd(const std::string& bytes) {
  int fd = memfd_create("constellation-spawn", MFD_CLOEXEC);
  if (fd < 0) return Errno("memfd_create");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status status = Errno("write memfd");
      close(fd);
      return status;
    }
    done += n;
  }
  return fd;
}

}  // namespace

bool IsLaunchMarker(const std::string& entry) {
  for (const char* name : {kInitEnv, kZygoteFdEnv}) {
    size_t n = strlen(name);
    if (entry.size() > n && entry.compare(0, n, name) == 0 && entry[n] == '=') return true;
  }
  return false;
}

absl::StatusOr<pid_t> SpawnInheriting(const LaunchOptions& options, std::initializer_list<int> inherit,
                                      const std::string& marker) {
  std::vector<char*> argv;
  for (const std::string& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> env;
  for (const std::string& e : options.env) {
    if (!IsLaunchMarker(e)) env.push_back(const_cast<char*>(e.c_str()));
  }
  std::string marker_copy = marker;
  env.push_back(marker_copy.data());
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd : inherit) {
    if (fd >= 0) posix_spawn_file_actions_adddup2(&actions, fd, fd);
  }
  if (options.stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, options.stdin_fd, STDIN_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGCHLD);  // a daemon may ignore SIGCHLD; monitors must not
  sigaddset(&defaults, SIGPIPE);  // the bridge ignores SIGPIPE; programs get the usual default
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t os_pid = 0;
  int rc = posix_spawn(&os_pid, options.path.c_str(), &actions, &attr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return Errno(absl::StrCat("posix_spawn ", options.path));
  }
  return os_pid;
}

absl::StatusOr<int> WriteSpawnInfo(const pb::SpawnInfo& info) { return WriteMemfd(info.SerializeAsString()); }

absl::StatusOr<pid_t> LaunchWithHandOff(const LaunchOptions& options, const pb::SpawnInfo& info) {
  absl::StatusOr<int> memfd = WriteSpawnInfo(info);
  if (!memfd.ok()) return memfd.status();
  absl::StatusOr<pid_t> os_pid =
      SpawnInheriting(options, {*memfd, info.listen_fd()}, absl::StrCat(kInitEnv, "=", *memfd));
  close(*memfd);
  return os_pid;
}

absl::StatusOr<pb::SpawnInfo> ReadSpawnInfo(const char* memfd_text) {
  int fd = -1;
  if (!absl::SimpleAtoi(memfd_text, &fd) || fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat(kInitEnv, "=", memfd_text, " is not a file descriptor"));
  }
  return ReadSpawnInfoFd(fd);
}

absl::StatusOr<pb::SpawnInfo> ReadSpawnInfoFd(int fd) {
  std::string bytes;
  char buf[65536];
  ssize_t n;
  while ((n = pread(fd, buf, sizeof(buf), bytes.size())) > 0) bytes.append(buf, n);
  close(fd);
  pb::SpawnInfo info;
  if (n < 0 || !info.ParseFromString(bytes)) return absl::DataLossError("cannot read the spawn hand-off");
  return info;
}

}  // namespace constellation::process_internal
