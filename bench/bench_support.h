#pragma once

// What the benchmarks share: the clock, CPU pinning, resource usage and the
// statistics (percentiles of one run; median, min and max over runs).
// channel_bench and the peer comparison (bench/compare/) both use it, so the
// two pin and summarize the same way.

#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The affinity this process started with; main() fills it first thing
// (InitCpus), before anything pins, so "unpinned" means this set.
inline cpu_set_t g_all_cpus;

inline void InitCpus() { sched_getaffinity(0, sizeof(g_all_cpus), &g_all_cpus); }

// Sets the affinity of every thread of this process (helper threads that a
// library started, such as our data plane's loop or ZeroMQ's I/O thread,
// included): `cpu`, or the start-up set for -1.
inline bool PinProcess(int cpu) {
  cpu_set_t set;
  if (cpu < 0) {
    set = g_all_cpus;
  } else {
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
  }
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return false;
  bool ok = true;
  while (dirent* entry = readdir(dir)) {
    int tid = std::atoi(entry->d_name);
    if (tid <= 0) continue;
    if (sched_setaffinity(tid, sizeof(set), &set) != 0 && errno != ESRCH) ok = false;
  }
  closedir(dir);
  return ok;
}

inline std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &g_all_cpus)) cpus.push_back(i);
  }
  return cpus;
}

struct Usage {
  int64_t voluntary = 0;    // context switches: the process blocked (one per wake-up)
  int64_t involuntary = 0;  // preempted
  int64_t cpu_ns = 0;       // user + system, all threads
};

inline Usage GetUsage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) { return int64_t{tv.tv_sec} * 1000000000 + int64_t{tv.tv_usec} * 1000; };
  return Usage{ru.ru_nvcsw, ru.ru_nivcsw, ns(ru.ru_utime) + ns(ru.ru_stime)};
}

inline Usage operator-(const Usage& a, const Usage& b) {
  return Usage{a.voluntary - b.voluntary, a.involuntary - b.involuntary, a.cpu_ns - b.cpu_ns};
}

// The p-th quantile (0..1) of one run's samples, nearest rank.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// One figure over several runs.
struct Summary {
  double median = 0, min = 0, max = 0;
};

inline Summary Summarize(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return Summary{median, v.front(), v.back()};
}

// The path of a runfile of this binary (`rel` from the workspace root, e.g.
// "bench/compare_raw"), or "" if none is found: under $RUNFILES_DIR, beside
// argv[0] or /proc/self/exe, or relative to the working directory (bazel run
// starts binaries in their runfiles tree).
inline std::string Runfile(const char* argv0, const std::string& rel) {
  std::vector<std::string> candidates;
  if (const char* dir = getenv("RUNFILES_DIR")) candidates.push_back(std::string(dir) + "/constellation/" + rel);
  candidates.push_back(std::string(argv0) + ".runfiles/constellation/" + rel);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) candidates.push_back(std::string(self, n) + ".runfiles/constellation/" + rel);
  candidates.push_back(rel);
  for (const std::string& c : candidates) {
    char resolved[PATH_MAX];
    if (access(c.c_str(), X_OK) == 0 && realpath(c.c_str(), resolved) != nullptr) return resolved;
  }
  return "";
}

}  // namespace bench
