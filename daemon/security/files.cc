#include "daemon/security/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

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

}  // namespace constellation::daemon::security
