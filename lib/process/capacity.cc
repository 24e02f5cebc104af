#include "lib/process/capacity.h"

#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace constellation::internal {
namespace {

// This process's memory cgroup limit (v1 or v2), or 0 when there is none or
// it cannot be read. A container's limit is the machine as far as we go.
uint64_t OwnMemoryCgroupLimit() {
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line;
  while (std::getline(cgroups, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    std::string file;
    if (parts[1] == "memory") {
      file = absl::StrCat("/sys/fs/cgroup/memory", parts[2], "/memory.limit_in_bytes");
    } else if (parts[0] == "0" && parts[1].empty()) {
      file = absl::StrCat("/sys/fs/cgroup", parts[2], "/memory.max");
    } else {
      continue;
    }
    std::ifstream in(file);
    std::string text;
    uint64_t limit = 0;
    if (in >> text && absl::SimpleAtoi(text, &limit) && limit > 0) return limit;
  }
  return 0;
}

}  // namespace

absl::StatusOr<Resources> ParseCapacity(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCapacityEnv, "=\"", text, "\" is not a capacity: write memory and cores, e.g. \"8 GiB,4\""));
  }
  absl::StatusOr<uint64_t> mem = parse_mem(absl::StripAsciiWhitespace(parts[0]));
  absl::StatusOr<double> cpu = parse_cpu(absl::StripAsciiWhitespace(parts[1]));
  if (!mem.ok() || !cpu.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCapacityEnv, "=\"", text, "\": ", (mem.ok() ? cpu.status() : mem.status()).message()));
  }
  if (*mem == 0) return absl::InvalidArgumentError(absl::StrCat(kCapacityEnv, "=\"", text, "\": memory must be > 0"));
  return Resources{*mem, *cpu};
}

Resources MachineCapacity() {
  uint64_t mem = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t limit = OwnMemoryCgroupLimit();
  if (limit > 0 && limit < mem) mem = limit;
  cpu_set_t set;
  int cpus = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (cpus <= 0) cpus = 1;
  return Resources{mem, static_cast<double>(cpus)};
}

absl::StatusOr<Resources> LocalCapacity(const char* env) {
  if (env == nullptr || *env == '\0') return MachineCapacity();
  return ParseCapacity(env);
}

}  // namespace constellation::internal
