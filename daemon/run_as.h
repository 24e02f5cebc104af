#pragma once

// --run-as=USER: a daemon started as root prepares what needs root, hands
// the user what it must write, and becomes the user for good, so nothing it
// launches runs as root.
//
//   1. LookUpUser(name).
//   2. PrepareDirsFor(): the cache directories are made (0700, checked like
//      any cache directory) and given to the user.
//   3. PrepareCgroupsFor(): the daemon's cgroup base is made as root (see
//      lib/process/cgroup.h) and its tree given to the user (delegation), so
//      that the user can make each process's leaf and move the process there.
//   4. DropTo(): supplementary groups, gid, uid; fails if root can be regained.
//
// Plain functions; call them from main() before any thread starts.

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/local.pb.h"

namespace constellation::daemon {

struct RunAsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// An error unless this process is root and `name` is a user other than root.
absl::StatusOr<RunAsUser> LookUpUser(const std::string& name);

// Creates each of `dirs` (0700) and chowns it to the user. Parents are
// created too but stay root's.
absl::Status PrepareDirsFor(const RunAsUser& user, const std::vector<std::string>& dirs);

// Chowns a cgroup base's directories and their files to the user (nothing if
// the base's version is 0).
absl::Status PrepareCgroupsFor(const RunAsUser& user, const pb::CgroupBase& base);

// Becomes the user: initgroups, setgid, setuid; checks root cannot come back.
absl::Status DropTo(const RunAsUser& user);

}  // namespace constellation::daemon
