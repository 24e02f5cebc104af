#include "lib/process/resources_query.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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

absl::StatusOr<Resources> QueryResources(const std::string& path, const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env, absl::Duration timeout) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> envs = env;
  envs.push_back(absl::StrCat(kResourcesQueryEnv, "=1"));
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  if (cargv.empty()) cargv.push_back(const_cast<char*>(path.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, path.c_str(), &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (spawned != 0) {
    close(out[0]);
    return absl::ErrnoToStatus(spawned, absl::StrCat("cannot run ", path));
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
