#include "lib/process/resources_query.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace constellation::process_internal {

std::string FormatResourcesAnswer(const Resources& resources) {
  return absl::StrFormat("%u %.17g\n", resources.mem, resources.cpu);
}

namespace {

// fork + exec in which the child makes only async-signal-safe calls (the
// caller has threads): join the cgroups, set up stdin/stdout/stderr, exec.
// Everything it needs is prepared before the fork.
pid_t StartQuery(const char* path, char* const* argv, char* const* envp, int out_fd,
                 const std::vector<std::string>& cgroup_procs) {
  std::vector<const char*> procs;
  for (const std::string& file : cgroup_procs) procs.push_back(file.c_str());
  pid_t pid = fork();
  if (pid != 0) return pid;
  for (const char* file : procs) {
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) _exit(126);  // never run outside the limits
    close(fd);
  }
  int null_in = open("/dev/null", O_RDONLY);
  int null_out = open("/dev/null", O_WRONLY);
  if (null_in < 0 || null_out < 0 || dup2(null_in, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
      dup2(null_out, STDERR_FILENO) < 0) {
    _exit(126);
  }
  execve(path, argv, envp);
  _exit(127);
}

}  // namespace

absl::StatusOr<Resources> QueryResources(const std::string& path, const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env, absl::Duration timeout,
                                         const std::vector<std::string>& cgroup_procs) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe");
  std::vector<std::string> envs = env;
  envs.push_back(absl::StrCat(kResourcesQueryEnv, "=1"));
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  if (cargv.empty()) cargv.push_back(const_cast<char*>(path.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = StartQuery(path.c_str(), cargv.data(), cenv.data(), out[1], cgroup_procs);
  int fork_error = errno;
  close(out[1]);
  if (pid < 0) {
    close(out[0]);
    return absl::ErrnoToStatus(fork_error, absl::StrCat("cannot run ", path));
  }
  std::string answer;
  absl::Time deadline = absl::Now() + timeout;
  while (answer.size() < 256) {
    pollfd p{out[0], POLLIN, 0};
    int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[256];
    ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    answer.append(buf, n);
  }
  close(out[0]);
  kill(pid, SIGKILL);  // answered or not, it has nothing more to do
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  std::vector<absl::string_view> parts = absl::StrSplit(answer, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  Resources resources;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &resources.mem) || !absl::SimpleAtod(parts[1], &resources.cpu)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " did not say what its init() asks for (is it a Constellation program?)"));
  }
  return resources;
}

}  // namespace constellation::process_internal
