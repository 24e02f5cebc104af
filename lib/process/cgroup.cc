#include "lib/process/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace constellation::internal {
namespace {

constexpr char kBasePrefix[] = "constellation-";
constexpr char kSupervisor[] = "supervisor";  // v2: the launcher and the monitors

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Sanitizers multiply memory and CPU use and reserve terabytes of address
// space: limits sized for the program would kill correct runs. Leaves are
// still made and removed, without limits.
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif

absl::Status WriteFile(const std::string& path, absl::string_view text) {
  // O_CREAT only matters for tests' plain directories; cgroupfs refuses new files.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  ssize_t n = write(fd, text.data(), text.size());
  int error = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return absl::ErrnoToStatus(error, absl::StrCat("write \"", text, "\" to ", path));
  }
  return absl::OkStatus();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", path));
}

std::vector<std::string> SubDirs(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* entry = readdir(d)) {
    if (entry->d_type == DT_DIR && entry->d_name[0] != '.') names.push_back(entry->d_name);
  }
  closedir(d);
  return names;
}

// Kills every process in `dir` and removes it, waiting up to a second for
// the killed ones to leave.
void KillAndRemove(const std::string& dir) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) return;
    for (absl::string_view line : absl::StrSplit(ReadFile(dir + "/cgroup.procs"), '\n', absl::SkipEmpty())) {
      int pid = 0;
      if (absl::SimpleAtoi(line, &pid) && pid > 0 && pid != getpid()) kill(pid, SIGKILL);
    }
    usleep(2000);
  }
}

// Removes a base and whatever leaves are still under it.
void RemoveTree(const std::string& base) {
  for (const std::string& leaf : SubDirs(base)) KillAndRemove(base + "/" + leaf);
  rmdir(base.c_str());
}

// Bases of launchers that no longer run (crashed, or SIGKILLed) under `dir`.
void SweepStale(const std::string& dir) {
  for (const std::string& name : SubDirs(dir)) {
    int pid = 0;
    if (!absl::StartsWith(name, kBasePrefix) || !absl::SimpleAtoi(name.substr(strlen(kBasePrefix)), &pid)) continue;
    if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH) continue;
    RemoveTree(dir + "/" + name);
  }
}

std::string BaseName() { return absl::StrCat(kBasePrefix, getpid()); }

absl::StatusOr<pb::CgroupBase> CreateV1(const CgroupLayout& layout) {
  if (layout.v1_memory.empty()) return absl::UnavailableError("no cgroup v1 memory hierarchy");
  pb::CgroupBase base;
  base.set_version(1);
  base.set_memory(layout.v1_memory + "/" + BaseName());
  SweepStale(layout.v1_memory);
  if (absl::Status made = MakeDir(base.memory()); !made.ok()) return made;
  if (!layout.v1_cpu.empty()) {
    SweepStale(layout.v1_cpu);
    base.set_cpu(layout.v1_cpu + "/" + BaseName());
    if (!MakeDir(base.cpu()).ok()) base.clear_cpu();  // memory alone is still worth enforcing
  }
  return base;
}

// v2 allows processes only in leaves of an enabled subtree, so the launcher
// moves itself into <base>/supervisor before turning the controllers on for
// its own cgroup and the base (systemd: needs Delegate=yes).
absl::StatusOr<pb::CgroupBase> CreateV2(const CgroupLayout& layout) {
  if (layout.v2.empty()) return absl::UnavailableError("no cgroup v2 hierarchy");
  std::string controllers = ReadFile(layout.v2 + "/cgroup.controllers");
  std::vector<absl::string_view> list = absl::StrSplit(controllers, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  bool memory = false, cpu = false;
  for (absl::string_view c : list) {
    memory = memory || c == "memory";
    cpu = cpu || c == "cpu";
  }
  if (!memory || !cpu) {
    return absl::UnavailableError(
        absl::StrCat("the unified cgroup ", layout.v2, " lacks the memory and cpu controllers"));
  }
  SweepStale(layout.v2);
  std::string dir = layout.v2 + "/" + BaseName();
  std::string supervisor = dir + "/" + kSupervisor;
  absl::Status status = MakeDir(dir);
  if (status.ok()) status = MakeDir(supervisor);
  if (status.ok()) status = WriteFile(supervisor + "/cgroup.procs", absl::StrCat(getpid()));
  if (status.ok()) status = WriteFile(layout.v2 + "/cgroup.subtree_control", "+memory +cpu");
  if (status.ok()) status = WriteFile(dir + "/cgroup.subtree_control", "+memory +cpu");
  if (!status.ok()) {
    WriteFile(layout.v2 + "/cgroup.procs", absl::StrCat(getpid())).IgnoreError();
    rmdir(supervisor.c_str());
    rmdir(dir.c_str());
    return status;
  }
  pb::CgroupBase base;
  base.set_version(2);
  base.set_memory(dir);
  base.set_cpu(dir);
  return base;
}

}  // namespace

bool CgroupLimitsApplied() { return !kSanitizerBuild; }

void SweepStaleCgroupBases(const CgroupLayout& layout) {
  for (const std::string* dir : {&layout.v1_memory, &layout.v1_cpu, &layout.v2}) {
    if (!dir->empty()) SweepStale(*dir);
  }
}

CgroupSetup CreateCgroupBase(const CgroupLayout& layout, const char* mode_env) {
  std::string mode = mode_env == nullptr || *mode_env == '\0' ? "auto" : mode_env;
  CgroupSetup setup;
  if (mode == "off") return setup;
  if (mode != "auto" && mode != "v1" && mode != "v2") {
    setup.why_not = absl::InvalidArgumentError(
        absl::StrCat(kCgroupsEnv, "=", mode, " is not a mode: use auto (the default), v2, v1 or off"));
    return setup;
  }
  absl::StatusOr<pb::CgroupBase> base = absl::UnavailableError("");
  absl::Status v2_error;
  if (mode != "v1") {
    base = CreateV2(layout);
    v2_error = base.status();
  }
  if (!base.ok() && mode != "v2") base = CreateV1(layout);
  if (base.ok()) {
    setup.base = *base;
  } else if (mode == "auto" && !v2_error.ok()) {
    setup.why_not =
        absl::Status(base.status().code(), absl::StrCat("v2: ", v2_error.message(), "; v1: ", base.status().message()));
  } else {
    setup.why_not = base.status();
  }
  return setup;
}

void RemoveCgroupBase(const pb::CgroupBase& base) {
  if (base.version() == 2) {
    // v2 allows no process in a cgroup whose children get controllers, and
    // the parent has them on: the launcher cannot leave for it. It turns
    // them off in the base and moves there, so only the empty base is left
    // once it exits, for systemd (at the unit's stop) or the next launcher's
    // sweep to remove.
    for (const std::string& leaf : SubDirs(base.memory())) {
      if (leaf != kSupervisor) KillAndRemove(base.memory() + "/" + leaf);
    }
    if (WriteFile(base.memory() + "/cgroup.subtree_control", "-memory -cpu").ok() &&
        WriteFile(base.memory() + "/cgroup.procs", absl::StrCat(getpid())).ok()) {
      rmdir((base.memory() + "/" + kSupervisor).c_str());
    }
    return;
  }
  if (!base.memory().empty()) RemoveTree(base.memory());
  if (!base.cpu().empty()) RemoveTree(base.cpu());
}

void RemoveCgroupLeaf(const pb::CgroupBase& base, absl::string_view name) {
  if (base.version() == 0 || name.empty()) return;
  KillAndRemove(absl::StrCat(base.memory(), "/", name));
  if (base.version() == 1 && !base.cpu().empty()) KillAndRemove(absl::StrCat(base.cpu(), "/", name));
}

void RemoveCgroupBaseIfUnused(const pb::CgroupBase& base) {
  // v2: a monitor cannot leave the supervisor group (see RemoveCgroupBase);
  // the base waits for the next launcher's sweep.
  if (base.version() != 1) return;
  if (!base.memory().empty()) rmdir(base.memory().c_str());  // EBUSY while others remain
  if (!base.cpu().empty()) rmdir(base.cpu().c_str());
}

absl::StatusOr<CgroupLeaf> CgroupLeaf::Create(const pb::CgroupBase& base, absl::string_view name,
                                              const Resources& resources) {
  absl::StatusOr<CgroupLeaf> leaf = Create(base, name);
  if (!leaf.ok()) return leaf;
  if (absl::Status limited = leaf->SetLimits(resources); !limited.ok()) {
    leaf->Remove();
    return limited;
  }
  return leaf;
}

absl::StatusOr<CgroupLeaf> CgroupLeaf::Create(const pb::CgroupBase& base, absl::string_view name) {
  CgroupLeaf leaf;
  if (base.version() == 0) return leaf;
  leaf.version_ = base.version();
  leaf.memory_dir_ = absl::StrCat(base.memory(), "/", name);
  if (!base.cpu().empty()) leaf.cpu_dir_ = absl::StrCat(base.cpu(), "/", name);
  if (absl::Status made = MakeDir(leaf.memory_dir_); !made.ok()) return made;
  if (leaf.version_ == 1 && !leaf.cpu_dir_.empty()) {
    if (absl::Status made = MakeDir(leaf.cpu_dir_); !made.ok()) {
      rmdir(leaf.memory_dir_.c_str());
      return made;
    }
  }
  return leaf;
}

absl::Status CgroupLeaf::SetLimits(const Resources& resources) {
  if (version_ == 0 || kSanitizerBuild) return absl::OkStatus();
  int64_t quota = std::max<int64_t>(1000, std::llround(resources.cpu * kCpuPeriodUs));
  std::string mem = absl::StrCat(resources.mem);
  absl::Status status;
  if (version_ == 2) {
    status = WriteFile(memory_dir_ + "/memory.max", mem);
    WriteFile(memory_dir_ + "/memory.swap.max", "0").IgnoreError();  // absent without swap accounting
    if (status.ok()) status = WriteFile(memory_dir_ + "/cpu.max", absl::StrCat(quota, " ", kCpuPeriodUs));
  } else {
    // The memory limit may not exceed memory+swap's: a raise (a spare's leaf,
    // limited ahead) needs memsw first, a fresh leaf or a cut the limit first.
    status = WriteFile(memory_dir_ + "/memory.limit_in_bytes", mem);
    if (absl::IsInvalidArgument(status) &&
        WriteFile(memory_dir_ + "/memory.memsw.limit_in_bytes", mem).ok()) {  // absent without swap
      status = WriteFile(memory_dir_ + "/memory.limit_in_bytes", mem);
    }
    WriteFile(memory_dir_ + "/memory.memsw.limit_in_bytes", mem).IgnoreError();
    if (status.ok() && !cpu_dir_.empty()) {
      status = WriteFile(cpu_dir_ + "/cpu.cfs_period_us", absl::StrCat(kCpuPeriodUs));
      if (status.ok()) status = WriteFile(cpu_dir_ + "/cpu.cfs_quota_us", absl::StrCat(quota));
    }
  }
  return status;
}

bool CgroupLeaf::OomKilled() const {
  if (version_ == 0) return false;
  std::string file = memory_dir_ + (version_ == 2 ? "/memory.events" : "/memory.oom_control");
  for (absl::string_view line : absl::StrSplit(ReadFile(file), '\n')) {
    uint64_t count = 0;
    if (absl::ConsumePrefix(&line, "oom_kill ") && absl::SimpleAtoi(line, &count)) return count > 0;
  }
  return false;
}

void CgroupLeaf::Remove() {
  if (version_ == 0) return;
  KillAndRemove(memory_dir_);
  if (version_ == 1 && !cpu_dir_.empty()) KillAndRemove(cpu_dir_);
  version_ = 0;
}

absl::Status JoinCgroup(const std::string& memory_dir, const std::string& cpu_dir, const Resources& resources) {
  if (memory_dir.empty()) {
    if (kSanitizerBuild) return absl::OkStatus();
    rlimit limit{resources.mem, resources.mem};
    if (setrlimit(RLIMIT_DATA, &limit) != 0) return absl::ErrnoToStatus(errno, "setrlimit(RLIMIT_DATA)");
    return absl::OkStatus();
  }
  if (absl::Status joined = WriteFile(memory_dir + "/cgroup.procs", "0"); !joined.ok()) return joined;
  if (!cpu_dir.empty() && cpu_dir != memory_dir) return WriteFile(cpu_dir + "/cgroup.procs", "0");
  return absl::OkStatus();
}

}  // namespace constellation::internal
