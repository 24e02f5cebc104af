#include "daemon/capacity.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace constellation::daemon {

namespace {

// A limit at or above this is "no limit" (v1 writes a page-rounded INT64_MAX).
constexpr uint64_t kUnlimited = uint64_t{1} << 60;

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The cgroup `path` ("/a/b") and every ancestor up to the root, deepest first.
std::vector<std::string> SelfAndAncestors(std::string path) {
  std::vector<std::string> out;
  while (!path.empty() && path != "/") {
    out.push_back(path);
    path = path.substr(0, path.rfind('/'));
  }
  out.push_back("");  // the root of the mount (a container's own cgroup under a cgroup namespace)
  return out;
}

struct CgroupPaths {
  std::optional<std::string> v2;      // the unified hierarchy's path
  std::optional<std::string> memory;  // v1: the memory controller's
  std::optional<std::string> cpu;     // v1: the cpu controller's
  std::string cpu_mount = "cpu";      // v1: its directory under /sys/fs/cgroup
};

CgroupPaths ReadSelfCgroup(const std::string& root) {
  CgroupPaths paths;
  std::optional<std::string> text = ReadFile(root + "/proc/self/cgroup");
  if (!text) return paths;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    if (fields[0] == "0" && fields[1].empty()) {
      paths.v2 = fields[2];
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(fields[1], ',')) {
      if (controller == "memory") paths.memory = fields[2];
      if (controller == "cpu") {
        paths.cpu = fields[2];
        paths.cpu_mount = fields[1];  // "cpu,cpuacct" is mounted under that name
      }
    }
  }
  return paths;
}

std::optional<uint64_t> ReadNumber(const std::string& path) {
  std::optional<std::string> text = ReadFile(path);
  uint64_t value = 0;
  if (!text || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) return std::nullopt;
  return value;
}

// The smallest memory limit along the cgroup path; nullopt: none.
std::optional<uint64_t> MemoryLimit(const std::string& root, const CgroupPaths& paths) {
  std::optional<uint64_t> limit;
  auto lower = [&](std::optional<uint64_t> value) {
    if (value && *value < kUnlimited) limit = std::min(limit.value_or(*value), *value);
  };
  if (paths.v2) {
    for (const std::string& dir : SelfAndAncestors(*paths.v2)) {
      lower(ReadNumber(root + "/sys/fs/cgroup" + dir + "/memory.max"));  // "max": not a number, no limit
    }
  }
  if (paths.memory) {
    for (const std::string& dir : SelfAndAncestors(*paths.memory)) {
      lower(ReadNumber(root + "/sys/fs/cgroup/memory" + dir + "/memory.limit_in_bytes"));
    }
  }
  return limit;
}

// The smallest CPU quota along the cgroup path, in cores; nullopt: none.
std::optional<double> CpuQuota(const std::string& root, const CgroupPaths& paths) {
  std::optional<double> quota;
  auto lower = [&](double cores) {
    if (cores > 0 && std::isfinite(cores)) quota = std::min(quota.value_or(cores), cores);
  };
  if (paths.v2) {
    for (const std::string& dir : SelfAndAncestors(*paths.v2)) {
      std::optional<std::string> text = ReadFile(root + "/sys/fs/cgroup" + dir + "/cpu.max");
      if (!text) continue;
      std::vector<std::string> fields = absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ');
      double max = 0, period = 0;
      if (fields.size() == 2 && absl::SimpleAtod(fields[0], &max) && absl::SimpleAtod(fields[1], &period) &&
          period > 0) {
        lower(max / period);  // "max 100000" does not parse: no limit
      }
    }
  }
  if (paths.cpu) {
    for (const std::string& dir : SelfAndAncestors(*paths.cpu)) {
      std::string base = root + "/sys/fs/cgroup/" + paths.cpu_mount + dir;
      std::optional<std::string> quota_text = ReadFile(base + "/cpu.cfs_quota_us");  // -1: none
      std::optional<uint64_t> period = ReadNumber(base + "/cpu.cfs_period_us");
      int64_t us = 0;
      if (quota_text && period && *period > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(*quota_text), &us) &&
          us > 0) {
        lower(static_cast<double>(us) / static_cast<double>(*period));
      }
    }
  }
  return quota;
}

absl::StatusOr<uint64_t> MemTotal(const std::string& root) {
  std::optional<std::string> text = ReadFile(root + "/proc/meminfo");
  if (text) {
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
      line = absl::StripAsciiWhitespace(line);
      uint64_t kib = 0;
      if (absl::ConsumeSuffix(&line, "kB") && absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib) && kib > 0) {
        return kib * 1024;
      }
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cannot read MemTotal from ", root, "/proc/meminfo: pass --mem=SIZE"));
}

}  // namespace

absl::StatusOr<Resources> DetectCapacity(const std::string& root, int affinity_cpus) {
  CgroupPaths paths = ReadSelfCgroup(root);
  absl::StatusOr<uint64_t> total = MemTotal(root);
  if (!total.ok()) return total.status();
  Resources capacity;
  capacity.mem = std::min(*total, MemoryLimit(root, paths).value_or(*total));
  double cpu = std::max(1, affinity_cpus);
  if (std::optional<double> quota = CpuQuota(root, paths)) cpu = std::min(cpu, std::max(1.0, std::floor(*quota)));
  capacity.cpu = cpu;
  return capacity;
}

int AffinityCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace constellation::daemon
