#include "daemon/security/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace constellation::daemon::security {
namespace {

absl::Status Errno(const std::string& what) {
  int error = errno;
  std::string message = absl::StrCat(what, ": ", std::strerror(error));
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == EACCES || error == EPERM) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

}  // namespace

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Errno(absl::StrCat("cannot read ", path));
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    data.append(buf, n);
    if (data.size() > max_bytes) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
    }
  }
  int error = errno;
  close(fd);
  if (n < 0) {
    errno = error;
    return Errno(absl::StrCat("cannot read ", path));
  }
  return data;
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode) {
  std::string temp = path + ".tmp-XXXXXX";
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("cannot create ", temp));
  bool ok = fchmod(fd, mode) == 0;
  size_t done = 0;
  while (ok && done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += n;
  }
  ok = ok && fsync(fd) == 0;
  absl::Status status = ok ? absl::OkStatus() : Errno(absl::StrCat("cannot write ", path));
  close(fd);
  if (status.ok() && rename(temp.c_str(), path.c_str()) != 0) status = Errno(absl::StrCat("cannot write ", path));
  if (!status.ok()) unlink(temp.c_str());
  return status;
}

absl::Status EnsurePrivateDir(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {  // mkdir -p, each new level 0700
    if (i != dir.size() && dir[i] != '/') continue;
    std::string partial = dir.substr(0, i);
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) return Errno(absl::StrCat("cannot create ", partial));
  }
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return Errno(absl::StrCat("cannot use ", dir));
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    return absl::FailedPreconditionError(absl::StrCat(dir, " belongs to uid ", st.st_uid, ", not to this user (uid ",
                                                      geteuid(),
                                                      "): refusing to use a directory someone else controls"));
  }
  if ((st.st_mode & 022) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is writable by other users (mode %04o): refusing to use it (chmod go-w it, or remove it)",
                        dir, st.st_mode & 07777));
  }
  return absl::OkStatus();
}

}  // namespace constellation::daemon::security
