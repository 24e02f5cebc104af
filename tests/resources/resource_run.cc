#include "tests/resources/resource_run.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {
namespace {

std::string OwnCgroup(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    std::vector<std::string> controllers = absl::StrSplit(parts.size() == 3 ? parts[1] : "", ',');
    if (parts.size() != 3 || std::find(controllers.begin(), controllers.end(), controller) == controllers.end()) {
      continue;
    }
    std::string dir = "/sys/fs/cgroup/" + controller + (parts[2] == "/" ? "" : parts[2]);
    return access(dir.c_str(), F_OK) == 0 ? dir : "";
  }
  return "";
}

}  // namespace

RunResult RunResourceProgram(std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env,
                             std::optional<std::string> format, pid_t* bridge) {
  RunOptions options;
  options.args = std::move(args);
  options.env = std::move(env);
  options.format = format;
  RunChecks checks;
  checks.what = absl::StrCat("resource program \"", absl::StrJoin(options.args, " "), "\"");
  checks.json = format.has_value() && *format == "json";
  Program program(RunfilePath("tests/resources/resource_programs"), std::move(options));
  if (bridge != nullptr) *bridge = program.os_pid();
  return Finish(program, checks);
}

std::string OwnMemoryCgroup() { return OwnCgroup("memory"); }
std::string OwnCpuCgroup() { return OwnCgroup("cpu"); }

std::string CgroupsUnavailable() {
  if (geteuid() != 0) return "not root";
  for (const std::string& dir : {OwnMemoryCgroup(), OwnCpuCgroup()}) {
    if (dir.empty()) return "no cgroup v1 memory and cpu hierarchies";
    if (access(dir.c_str(), W_OK) != 0) return dir + " is not writable";
  }
  return "";
}

std::vector<std::string> Bases(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* entry = readdir(d)) {
    if (absl::StartsWith(entry->d_name, "constellation-")) names.push_back(entry->d_name);
  }
  closedir(d);
  return names;
}

std::vector<std::string> StaleBases(const std::string& dir) {
  std::vector<std::string> stale;
  for (const std::string& name : Bases(dir)) {
    int pid = 0;
    if (!absl::SimpleAtoi(name.substr(strlen("constellation-")), &pid)) continue;
    if (kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(name);
  }
  return stale;
}

bool WaitBaseGone(const std::string& dir, pid_t bridge, int seconds) {
  std::string base = absl::StrCat(dir, "/constellation-", bridge);
  absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (access(base.c_str(), F_OK) == 0) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

}  // namespace constellation::testing
