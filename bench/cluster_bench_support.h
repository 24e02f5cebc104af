#pragma once

// Support for cluster_bench.cc: processes in their own groups, emergency
// clean-up, reading JSON lines, statistics. Only cluster_bench.cc includes it.

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "daemon/binary_cache.h"
#include "grpcpp/grpcpp.h"
#include "proto/cluster.grpc.pb.h"

extern char** environ;

namespace cluster_bench {

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline double Ms(int64_t ns) { return ns / 1e6; }

// ---------------------------------------------------------------------------
// Processes this benchmark started. Each leads its own process group (what it
// starts stays in the group), so a group kill leaves nothing behind. The
// plain array is what the signal handlers read.

constexpr int kMaxGroups = 64;
inline volatile pid_t g_groups[kMaxGroups];
inline char g_tmpdir[4096];

inline void Track(pid_t pid) {
  for (auto& slot : g_groups) {
    if (slot == 0) {
      slot = pid;
      return;
    }
  }
}
inline void Untrack(pid_t pid) {
  for (auto& slot : g_groups) {
    if (slot == pid) slot = 0;
  }
}

// Async-signal-safe: kill every group, remove the temp dir with rm, exit.
inline void EmergencyExit(const char* why) {
  (void)!write(STDERR_FILENO, why, strlen(why));
  for (auto& slot : g_groups) {
    if (slot > 0) kill(-slot, SIGKILL);
  }
  if (g_tmpdir[0] != '\0') {
    pid_t rm = fork();
    if (rm == 0) {
      execl("/bin/rm", "rm", "-rf", g_tmpdir, static_cast<char*>(nullptr));
      _exit(127);
    }
    if (rm > 0) waitpid(rm, nullptr, 0);
  }
  _exit(3);
}

inline void OnSignal(int signal) {
  EmergencyExit(signal == SIGALRM ? "cluster_bench: watchdog expired; killed everything\n"
                                  : "cluster_bench: interrupted; killed everything\n");
}

struct Proc {
  pid_t pid = -1;
  int pidfd = -1;
  int in = -1;   // our end of its stdin (or -1)
  int out = -1;  // our end of its stdout (or -1)
};

// Starts argv[0] with `extra_env` added, stdin a pipe (or /dev/null), stdout a
// pipe, stderr to `stderr_path` (or ours).
Proc Start(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env, bool stdin_pipe,
           const std::string& stderr_path, int death_signal) {
  std::vector<std::string> env_strings(extra_env);
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string key = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const std::string& x : extra_env) overridden = overridden || x.substr(0, x.find('=')) == key;
    if (!overridden) env_strings.push_back(entry);
  }
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  int in[2] = {-1, -1}, out[2];
  if ((stdin_pipe && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0) {
    perror("pipe");
    EmergencyExit("cluster_bench: cannot make a pipe\n");
  }
  int err = stderr_path.empty() ? -1 : open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, death_signal);
    if (getppid() != parent) _exit(1);
    if (stdin_pipe) {
      dup2(in[0], STDIN_FILENO);
    } else {
      int null = open("/dev/null", O_RDONLY);
      dup2(null, STDIN_FILENO);
    }
    dup2(out[1], STDOUT_FILENO);
    if (err >= 0) dup2(err, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  if (pid < 0) EmergencyExit("cluster_bench: fork failed\n");
  setpgid(pid, pid);
  Track(pid);
  if (err >= 0) close(err);
  if (stdin_pipe) close(in[0]);
  close(out[1]);
  Proc p;
  p.pid = pid;
  p.pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  p.in = stdin_pipe ? in[1] : -1;
  p.out = out[0];
  return p;
}

// Waits up to `timeout_ms` for the process to exit; then (or at once if it has
// not) kills its whole group and reaps it. Returns its wait status if it
// exited by itself in time.
inline std::optional<int> Finish(Proc& p, int timeout_ms, int first_signal = 0) {
  if (p.pid <= 0) return std::nullopt;
  if (first_signal != 0) kill(p.pid, first_signal);
  bool exited = false;
  if (p.pidfd >= 0) {
    pollfd pfd{p.pidfd, POLLIN, 0};
    exited = poll(&pfd, 1, timeout_ms) == 1;
  }
  // The leader is not reaped yet, so its group id cannot be reused: safe to kill.
  kill(-p.pid, SIGKILL);
  int status = 0;
  waitpid(p.pid, &status, 0);
  Untrack(p.pid);
  for (int* fd : {&p.pidfd, &p.in, &p.out}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  p.pid = -1;
  if (!exited) return std::nullopt;
  return status;
}

// Lines from a pipe, with a deadline.
class Lines {
 public:
  explicit Lines(int fd) : fd_(fd) {}
  // 1: a line; 0: end of file; -1: deadline passed.
  int Next(std::string* line, int64_t deadline_ns) {
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return 1;
      }
      if (eof_) return 0;
      int64_t left = deadline_ns - NowNs();
      if (left <= 0) return -1;
      pollfd pfd{fd_, POLLIN, 0};
      int r = poll(&pfd, 1, static_cast<int>(left / 1000000 + 1));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      Fill();
    }
  }
  // After poll said the fd is readable.
  void Fill() {
    char chunk[65536];
    ssize_t n = read(fd_, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      eof_ = true;
      return;
    }
    buf_.append(chunk, n);
  }
  bool TakeLine(std::string* line) {
    size_t nl = buf_.find('\n');
    if (nl == std::string::npos) return false;
    *line = buf_.substr(0, nl);
    buf_.erase(0, nl + 1);
    return true;
  }
  bool eof() const { return eof_; }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string buf_;
  bool eof_ = false;
};

inline std::string Field(const std::string& line, const std::string& key) {
  std::string needle = "\"" + key + "\":\"";
  size_t start = line.find(needle);
  if (start == std::string::npos) return "";
  start += needle.size();
  return line.substr(start, line.find('"', start) - start);
}

// An "output" event with data: its decoded bytes.
inline std::optional<std::string> OutputData(const std::string& line) {
  if (Field(line, "event") != "output" || line.find("\"data\"") == std::string::npos) return std::nullopt;
  std::string data;
  absl::Base64Unescape(Field(line, "data"), &data);
  return data;
}

// ---------------------------------------------------------------------------
// Statistics.

inline double Pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}
inline double Median(const std::vector<double>& v) { return Pct(v, 0.5); }

inline void PrintMedMinMax(const char* name, const std::vector<double>& v, const char* suffix = "") {
  if (v.empty()) {
    printf("  %-42s (no samples)\n", name);
    return;
  }
  printf("  %-42s median %8.2f ms   min %8.2f   max %8.2f   (n=%zu)%s\n", name, Median(v),
         *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()), v.size(), suffix);
}

inline void PrintP50P99(const char* name, const std::vector<double>& v) {
  if (v.empty()) {
    printf("  %-42s (no samples)\n", name);
    return;
  }
  printf("  %-42s p50 %7.3f ms   p90 %7.3f   p99 %7.3f   max %7.3f   (n=%zu)\n", name, Pct(v, 0.5), Pct(v, 0.9),
         Pct(v, 0.99), *std::max_element(v.begin(), v.end()), v.size());
}

}  // namespace cluster_bench
