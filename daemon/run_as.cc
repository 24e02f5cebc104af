#include "daemon/run_as.h"

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/process/private_dir.h"

namespace constellation::daemon {

using internal::EnsurePrivateDir;

namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// `path` and everything under it (a cgroup tree: directories and their
// interface files; no symlinks there).
absl::Status ChownTree(const std::string& path, const RunAsUser& user) {
  if (lchown(path.c_str(), user.uid, user.gid) != 0) return Errno(absl::StrCat("chown ", path));
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return absl::OkStatus();  // a file
  absl::Status status;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    std::string child = path + "/" + name;
    if (entry->d_type == DT_DIR) {
      status.Update(ChownTree(child, user));
    } else if (lchown(child.c_str(), user.uid, user.gid) != 0 && errno != EPERM && errno != EROFS) {
      status.Update(Errno(absl::StrCat("chown ", child)));  // some cgroup files cannot change owner
    }
  }
  closedir(dir);
  return status;
}

}  // namespace

absl::StatusOr<RunAsUser> LookUpUser(const std::string& name) {
  if (geteuid() != 0) return absl::FailedPreconditionError("--run-as needs the daemon to be started as root");
  errno = 0;
  passwd* pw = getpwnam(name.c_str());
  if (pw == nullptr) return absl::InvalidArgumentError(absl::StrCat("--run-as: no user \"", name, "\""));
  if (pw->pw_uid == 0) return absl::InvalidArgumentError(absl::StrCat("--run-as: \"", name, "\" is root"));
  return RunAsUser{name, pw->pw_uid, pw->pw_gid};
}

absl::Status PrepareDirsFor(const RunAsUser& user, const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {  // all checked as root's first: a parent given away is no longer
    absl::Status status = EnsurePrivateDir(dir);
    if (!status.ok()) return status;
  }
  for (const std::string& dir : dirs) {
    if (lchown(dir.c_str(), user.uid, user.gid) != 0) return Errno(absl::StrCat("chown ", dir));
  }
  return absl::OkStatus();
}

absl::Status PrepareCgroupsFor(const RunAsUser& user, const pb::CgroupBase& base) {
  if (base.version() == 0) return absl::OkStatus();
  absl::Status status = ChownTree(base.memory(), user);
  if (status.ok() && !base.cpu().empty() && base.cpu() != base.memory()) status = ChownTree(base.cpu(), user);
  return status;
}

absl::Status DropTo(const RunAsUser& user) {
  if (initgroups(user.name.c_str(), user.gid) != 0) return Errno("initgroups");
  if (setgid(user.gid) != 0) return Errno("setgid");
  if (setuid(user.uid) != 0) return Errno("setuid");
  if (setuid(0) == 0 || geteuid() == 0)
    return absl::InternalError("could still become root after dropping to the user");
  return absl::OkStatus();
}

}  // namespace constellation::daemon
