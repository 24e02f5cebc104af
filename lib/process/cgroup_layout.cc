// Finding this process's own cgroups: which hierarchies are mounted where,
// and where in each this process is.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "lib/process/cgroup.h"

namespace constellation::internal {
namespace {

struct Mount {
  std::string root;   // the hierarchy's path that is mounted
  std::string point;  // where
  std::string fstype;
  std::vector<std::string> options;  // super options: controllers for v1
};

std::vector<Mount> CgroupMounts(absl::string_view mountinfo) {
  std::vector<Mount> mounts;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    // id parent major:minor root point options [optional...] - fstype source super
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    size_t dash = 0;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (fields.size() < 5 || dash + 3 >= fields.size()) continue;
    Mount mount{std::string(fields[3]), std::string(fields[4]), std::string(fields[dash + 1]), {}};
    if (mount.fstype != "cgroup" && mount.fstype != "cgroup2") continue;
    mount.options = absl::StrSplit(fields[dash + 3], ',');
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

// The directory of `own` (a path in the hierarchy) under `mount`, or "".
std::string Under(const Mount& mount, absl::string_view own) {
  if (mount.root == "/") return own == "/" ? mount.point : mount.point + std::string(own);
  if (own == mount.root) return mount.point;
  if (absl::StartsWith(own, mount.root + "/")) return mount.point + std::string(own.substr(mount.root.size()));
  return "";
}

bool HasOption(const Mount& mount, absl::string_view option) {
  for (const std::string& o : mount.options) {
    if (o == option) return true;
  }
  return false;
}

std::string ReadAll(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

CgroupLayout ParseCgroupLayout(absl::string_view mountinfo, absl::string_view proc_self_cgroup) {
  std::vector<Mount> mounts = CgroupMounts(mountinfo);
  CgroupLayout layout;
  for (absl::string_view line : absl::StrSplit(proc_self_cgroup, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    std::vector<absl::string_view> controllers = absl::StrSplit(parts[1], ',');
    for (const Mount& mount : mounts) {
      if (parts[0] == "0" && parts[1].empty()) {
        if (mount.fstype == "cgroup2" && layout.v2.empty()) layout.v2 = Under(mount, parts[2]);
        continue;
      }
      if (mount.fstype != "cgroup") continue;
      for (absl::string_view controller : controllers) {
        if (!HasOption(mount, controller)) continue;
        if (controller == "memory" && layout.v1_memory.empty()) layout.v1_memory = Under(mount, parts[2]);
        if (controller == "cpu" && layout.v1_cpu.empty()) layout.v1_cpu = Under(mount, parts[2]);
      }
    }
  }
  return layout;
}

CgroupLayout ReadCgroupLayout() {
  return ParseCgroupLayout(ReadAll("/proc/self/mountinfo"), ReadAll("/proc/self/cgroup"));
}

}  // namespace constellation::internal
