#include "bench/compare/launch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace compare {
namespace {

std::atomic<pid_t> g_group{0};  // the running program's process group, for the signal handler

void OnSignal(int sig) {
  pid_t group = g_group.load();
  if (group > 0) kill(-group, SIGKILL);
  _exit(128 + sig);
}

// Waits up to `ms` for the process behind `pidfd` to exit; true if it did.
bool AwaitExit(int pidfd, int64_t ms) {
  pollfd p{pidfd, POLLIN, 0};
  while (true) {
    int r = poll(&p, 1, static_cast<int>(ms));
    if (r < 0 && errno == EINTR) continue;
    return r == 1;
  }
}

[[noreturn]] void Exec(const std::vector<std::string>& argv, const std::string& log) {
  setpgid(0, 0);
  int null = open("/dev/null", O_RDONLY);
  int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (null < 0 || out < 0) _exit(126);
  dup2(null, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(out, STDERR_FILENO);
  // The driver may itself run under something that set these; the programs start clean.
  for (const char* var : {"CONSTELLATION", "CONSTELLATION_FORMAT", "CONSTELLATION_INIT"}) unsetenv(var);
  std::vector<char*> cargs;
  for (const std::string& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  execvp(cargs[0], cargs.data());
  _exit(127);
}

}  // namespace

absl::Status Run(const std::vector<std::string>& argv, int timeout_s, const std::string& log) {
  pid_t child = fork();
  if (child < 0) return absl::ErrnoToStatus(errno, "fork");
  if (child == 0) Exec(argv, log);
  setpgid(child, child);  // also here: no race with the kill below
  g_group = child;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  if (pidfd < 0) return absl::ErrnoToStatus(errno, "pidfd_open");
  bool timed_out = !AwaitExit(pidfd, int64_t{timeout_s} * 1000);
  if (timed_out) {
    kill(-child, SIGTERM);  // mpirun cleans up its ranks on SIGTERM
    if (!AwaitExit(pidfd, 3000)) kill(-child, SIGKILL);
  }
  int status = 0;
  waitpid(child, &status, 0);
  close(pidfd);
  kill(-child, SIGKILL);  // anything of the group still there (normally nothing)
  g_group = 0;
  if (timed_out) return absl::DeadlineExceededError(absl::StrCat("no result within ", timeout_s, " s"));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(WIFEXITED(status) ? absl::StrCat("exited with ", WEXITSTATUS(status))
                                               : absl::StrCat("killed by signal ", WTERMSIG(status)));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("no file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Tail(const std::string& path, int lines) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return "";
  std::vector<std::string> all = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + from, all.end(), "\n");
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace compare
