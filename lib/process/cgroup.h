#pragma once

// Enforcing a process's declared resources with cgroups.
//
// A launcher (the local bridge, or a node daemon) calls CreateCgroupBase()
// once: a directory "constellation-<its os pid>" under its own cgroup, in the
// memory and cpu hierarchies (cgroup v1) or in the unified one (v2). Each
// process's monitor then makes a leaf for its process under that base with
// the process's memory limit and CPU quota (CgroupLeaf::Create); the process
// moves itself into the leaf (JoinCgroup) before any user code runs, so the
// monitor stays outside and survives an out-of-memory kill. When the process
// has exited the monitor reads whether the kernel OOM-killed it, kills what
// is left in the leaf and removes it. The launcher removes the base when it
// ends; a monitor whose launcher died removes it if it is the last one out,
// and CreateCgroupBase() sweeps bases left by launchers that no longer run.
// (On v2 a process cannot move back up into a cgroup whose children have
// controllers, so there the empty base of an ended launcher is left for
// systemd, at the unit's stop, or for the next launcher's sweep.)
//
// Where no hierarchy is writable, processes get setrlimit(RLIMIT_DATA) for
// memory, no CPU limit, and the launcher prints a warning once.
//
// CONSTELLATION_CGROUPS=auto (default: v2 when the unified hierarchy has the
// memory and cpu controllers, else v1), v2, v1 or off.
//
// Thread safety: plain functions and values; a CgroupLeaf is used by one thread.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/core/resources.h"
#include "proto/local.pb.h"

namespace constellation::internal {

inline constexpr char kCgroupsEnv[] = "CONSTELLATION_CGROUPS";

// CFS period of every leaf's CPU quota. Long enough that a process with a
// small share still starts (loading and init take a few ms of CPU) within its
// first period; short enough that a spinning process is visibly held to its
// share within a second.
inline constexpr int64_t kCpuPeriodUs = 250'000;

// False in ASan/TSan builds, whose processes need several times the memory
// and CPU they declare: their leaves are made and removed, without limits.
bool CgroupLimitsApplied();

// Where this process's own cgroups are, read from /proc/self/mountinfo and
// /proc/self/cgroup (passed in, for tests). Empty strings where a hierarchy
// is not mounted or this process is not in it.
struct CgroupLayout {
  std::string v1_memory;  // e.g. /sys/fs/cgroup/memory/user.slice
  std::string v1_cpu;     // e.g. /sys/fs/cgroup/cpu,cpuacct/user.slice
  std::string v2;         // e.g. /sys/fs/cgroup/system.slice/constellation.service
};
CgroupLayout ParseCgroupLayout(absl::string_view mountinfo, absl::string_view proc_self_cgroup);
CgroupLayout ReadCgroupLayout();

// Creates this launcher's base (see above) as CONSTELLATION_CGROUPS says
// (`mode_env`, may be null). A base with version 0 means "not enforced with
// cgroups"; the error then says why, for the warning. Sweeps stale bases.
struct CgroupSetup {
  pb::CgroupBase base;
  absl::Status why_not;  // OK when cgroups are used, or were turned off on purpose
};
CgroupSetup CreateCgroupBase(const CgroupLayout& layout, const char* mode_env);

// Removes the bases (and their leaves, killing what still runs there) of
// launchers that no longer run, under every hierarchy of `layout`.
// CreateCgroupBase() does it; so do test harnesses after SIGKILLing a group.
void SweepStaleCgroupBases(const CgroupLayout& layout);

// The launcher is done: removes its base (its leaves are gone by then; any
// left behind are emptied and removed too).
void RemoveCgroupBase(const pb::CgroupBase& base);

// One process's cgroup, owned by its monitor.
class CgroupLeaf {
 public:
  CgroupLeaf() = default;  // none: the process is not enforced with cgroups

  // Makes <base>/<name> with `resources` as memory limit and CPU quota.
  static absl::StatusOr<CgroupLeaf> Create(const pb::CgroupBase& base, absl::string_view name,
                                           const Resources& resources);
  // Makes <base>/<name> without limits (a spare's, joined before its spawn
  // is known: docs/process-model.md, "Spares"); SetLimits before user code.
  static absl::StatusOr<CgroupLeaf> Create(const pb::CgroupBase& base, absl::string_view name);
  // Writes `resources` as the leaf's memory limit and CPU quota.
  absl::Status SetLimits(const Resources& resources);

  bool enabled() const { return version_ != 0; }
  // Where the process must move itself (JoinCgroup): one dir per hierarchy.
  const std::string& memory_dir() const { return memory_dir_; }
  const std::string& cpu_dir() const { return cpu_dir_; }

  // Whether the kernel killed a process of this leaf for exceeding its memory.
  bool OomKilled() const;

  // SIGKILLs whatever still runs in the leaf and removes it (bounded wait).
  void Remove();

 private:
  int version_ = 0;
  std::string memory_dir_;
  std::string cpu_dir_;
};

// In the user process, before user code: moves the calling process into the
// leaf's directories; with no leaf, applies the setrlimit fallback.
absl::Status JoinCgroup(const std::string& memory_dir, const std::string& cpu_dir, const Resources& resources);

// Kills what runs in <base>/<name> and removes it, if it is there (a launcher
// cleaning up after a monitor that died).
void RemoveCgroupLeaf(const pb::CgroupBase& base, absl::string_view name);

// A monitor whose launcher is gone: removes the base if nothing else uses it.
void RemoveCgroupBaseIfUnused(const pb::CgroupBase& base);

}  // namespace constellation::internal
