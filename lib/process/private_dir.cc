#include "lib/process/private_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace constellation::internal {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status Refuse(const std::string& path, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("refusing to use ", path, ": ", why,
                   "; someone else could place or change files there. Remove it, or choose another directory"));
}

bool TrustedOwner(uid_t uid) { return uid == 0 || uid == geteuid(); }

// A parent of a private directory: others may not rename entries in it.
absl::Status CheckParent(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return Errno(absl::StrCat("lstat ", path));
  if (S_ISLNK(st.st_mode)) {
    if (!TrustedOwner(st.st_uid)) return Refuse(path, "it is a symlink owned by another user");
    if (stat(path.c_str(), &st) != 0) return Errno(absl::StrCat("stat ", path));
  }
  if (!S_ISDIR(st.st_mode)) return Refuse(path, "it is not a directory");
  if (!TrustedOwner(st.st_uid)) return Refuse(path, absl::StrCat("it is owned by another user (uid ", st.st_uid, ")"));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return Refuse(path, "others may write to it and it is not sticky");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckPrivateDir(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return Errno(absl::StrCat("lstat ", path));
  if (S_ISLNK(st.st_mode)) return Refuse(path, "it is a symlink");
  if (!S_ISDIR(st.st_mode)) return Refuse(path, "it is not a directory");
  if (st.st_uid != geteuid()) {
    return Refuse(path, absl::StrCat("it is owned by uid ", st.st_uid, ", not by this process's uid ", geteuid()));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return Refuse(path, "its group or others may write to it");
  // Every parent up to the root: none lets others swap this directory.
  std::string parent = path;
  while (true) {
    size_t slash = parent.find_last_of('/', parent.size() > 1 ? parent.size() - 2 : 0);
    if (slash == std::string::npos) break;  // relative: the working directory is the caller's business
    parent = slash == 0 ? "/" : parent.substr(0, slash);
    absl::Status status = CheckParent(parent);
    if (!status.ok()) return status;
    if (parent == "/") break;
  }
  return absl::OkStatus();
}

absl::Status EnsurePrivateDir(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory name");
  // mkdir -p; a component that already exists is checked below (parents
  // need only be safe, the directory itself must be ours alone).
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    std::string partial = path.substr(0, i);
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) return Errno(absl::StrCat("mkdir ", partial));
  }
  return CheckPrivateDir(path);
}

namespace {

// Removes "<parent>/<prefix><pid>-*" directories of ours whose process is
// gone (a launcher that was SIGKILLed could not remove its own).
void SweepStale(const std::string& parent, const std::string& prefix) {
  DIR* dir = opendir(parent.c_str());
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (!absl::ConsumePrefix(&name, prefix)) continue;
    int pid = 0;
    if (!absl::SimpleAtoi(name.substr(0, name.find('-')), &pid) || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    int fd = openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    DIR* stale = fstat(fd, &st) == 0 && st.st_uid == geteuid() ? fdopendir(fd) : nullptr;
    if (stale == nullptr) {
      close(fd);
      continue;
    }
    while (dirent* file = readdir(stale)) {
      if (file->d_name[0] != '.') unlinkat(fd, file->d_name, 0);  // its socket
    }
    closedir(stale);
    unlinkat(dirfd(dir), entry->d_name, AT_REMOVEDIR);
  }
  closedir(dir);
}

}  // namespace

absl::StatusOr<std::string> MakePrivateTempDir(absl::string_view tag) {
  std::string parent = "/tmp";
  std::string prefix = absl::StrCat("constellation-", geteuid(), "-", tag, "-");
  const char* runtime_dir = getenv("XDG_RUNTIME_DIR");
  if (runtime_dir != nullptr && runtime_dir[0] == '/' && CheckPrivateDir(runtime_dir).ok()) {
    parent = runtime_dir;
    prefix = absl::StrCat("constellation-", tag, "-");
  }
  SweepStale(parent, prefix);
  std::string base = absl::StrCat(parent, "/", prefix, getpid(), "-XXXXXX");
  if (mkdtemp(base.data()) == nullptr) return Errno(absl::StrCat("mkdtemp ", base));
  absl::Status status = CheckPrivateDir(base);
  if (!status.ok()) {
    rmdir(base.c_str());
    return status;
  }
  return base;
}

}  // namespace constellation::internal
