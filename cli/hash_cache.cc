#include "cli/hash_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "daemon/binary_cache.h"
#include "lib/process/private_dir.h"

namespace constellation::cli {
namespace {

constexpr char kEntryHeader[] = "constellation sha256 v1";

// Filesystems whose times come from this machine's clock (statfs f_type).
bool IsLocalFilesystem(int fd) {
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return false;
  switch (static_cast<uint32_t>(fs.f_type)) {
    case 0xEF53u:      // ext2/3/4
    case 0x58465342u:  // XFS
    case 0x9123683Eu:  // Btrfs
    case 0x01021994u:  // tmpfs
    case 0x794C7630u:  // overlayfs
    case 0x2FC12FC1u:  // ZFS
    case 0xF2F52010u:  // F2FS
      return true;
    default:
      return false;
  }
}

// Opens `dir` (not through a symlink at its end): -1 unless it is a directory
// of this user's that nobody else can write. Entries are then opened
// relative to this fd, so the directory checked is the one used.
int OpenPrivateDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
    return fd;
  }
  if (fd >= 0) close(fd);
  return -1;
}

}  // namespace

HashCache::HashCache(Options options) : options_(std::move(options)) {
  if (!options_.hasher) options_.hasher = daemon::Sha256OfFd;
  if (!options_.now) options_.now = absl::Now;
  if (!options_.local_file) options_.local_file = IsLocalFilesystem;
}

std::optional<HashCache> HashCache::Default() {
  const char* setting = std::getenv(kHashCacheEnv);
  if (setting != nullptr && std::string(setting) == "off") return std::nullopt;
  std::string dir;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (xdg != nullptr && xdg[0] == '/') {
    dir = absl::StrCat(xdg, "/constellation/sha256");
  } else if (home != nullptr && home[0] == '/') {
    dir = absl::StrCat(home, "/.cache/constellation/sha256");
  } else {
    return std::nullopt;
  }
  // Made 0700 if missing; refused unless ours alone, through parents no one
  // else can rename it in.
  if (!internal::EnsurePrivateDir(dir).ok()) return std::nullopt;
  return HashCache(Options{dir, nullptr, nullptr, nullptr});
}

absl::StatusOr<std::string> HashCache::Sha256(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat before;
  if (fd < 0 || fstat(fd, &before) != 0) {
    absl::Status missing = absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
    if (fd >= 0) close(fd);
    return missing;
  }
  const Stamp stamp = daemon::BinaryCache::StampOf(before);
  std::optional<std::string> sha = Lookup(stamp);
  if (sha) {
    close(fd);
    return *sha;
  }
  const absl::Time hashed_from = options_.now();
  absl::StatusOr<std::string> hashed = options_.hasher(fd, path);
  struct stat after;
  const bool unchanged = fstat(fd, &after) == 0 && daemon::BinaryCache::StampOf(after) == stamp;
  const bool may_remember = hashed.ok() && unchanged && MayRemember(stamp, hashed_from, fd);
  close(fd);
  if (may_remember) Remember(stamp, *hashed);
  return hashed;
}

std::string HashCache::EntryName(const Stamp& stamp) const {
  return absl::StrFormat("%x-%x", static_cast<uint64_t>(stamp.dev), static_cast<uint64_t>(stamp.ino));
}

std::optional<std::string> HashCache::Lookup(const Stamp& stamp) const {
  int dir = OpenPrivateDir(options_.dir);
  if (dir < 0) return std::nullopt;
  // Non-blocking and checked regular: a FIFO or device put there cannot hang us.
  int fd = openat(dir, EntryName(stamp).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  close(dir);
  if (fd < 0) return std::nullopt;
  struct stat st;
  char buf[kMaxEntry + 1];
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof(buf)) : -1;
  close(fd);
  if (n <= 0 || static_cast<size_t>(n) > kMaxEntry) return std::nullopt;
  std::vector<absl::string_view> lines = absl::StrSplit(absl::string_view(buf, n), '\n');
  if (lines.size() != 3 || lines[0] != kEntryHeader || !lines[2].empty()) return std::nullopt;
  std::vector<absl::string_view> fields = absl::StrSplit(lines[1], ' ');
  int64_t size = 0, mtime_ns = 0, ctime_ns = 0;
  pb::BinaryId id;
  if (fields.size() != 4 || !absl::SimpleAtoi(fields[0], &size) || !absl::SimpleAtoi(fields[1], &mtime_ns) ||
      !absl::SimpleAtoi(fields[2], &ctime_ns)) {
    return std::nullopt;
  }
  id.set_sha256(std::string(fields[3]));
  if (!daemon::ValidateBinaryId(id).ok() || size != stamp.size || mtime_ns != stamp.mtime_ns ||
      ctime_ns != stamp.ctime_ns) {
    return std::nullopt;
  }
  return id.sha256();
}

bool HashCache::MayRemember(const Stamp& stamp, absl::Time hashed_from, int fd) const {
  const int64_t changed_ns = std::max(stamp.mtime_ns, stamp.ctime_ns);
  const bool whole_seconds = stamp.mtime_ns % 1000000000 == 0 && stamp.ctime_ns % 1000000000 == 0;
  return !whole_seconds && absl::FromUnixNanos(changed_ns) + kRacyMargin < hashed_from && options_.local_file(fd);
}

void HashCache::Remember(const Stamp& stamp, const std::string& sha) const {
  int dir = OpenPrivateDir(options_.dir);
  if (dir < 0) return;  // a cache that cannot be written is only slower
  const std::string entry = EntryName(stamp);
  const std::string temp = absl::StrCat(entry, ".", getpid(), ".tmp");
  const std::string text = absl::StrFormat("%s\n%d %d %d %s\n", kEntryHeader, static_cast<int64_t>(stamp.size),
                                           stamp.mtime_ns, stamp.ctime_ns, sha);
  int fd = openat(dir, temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) {
    bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    if (!written || renameat(dir, temp.c_str(), dir, entry.c_str()) != 0) unlinkat(dir, temp.c_str(), 0);
  }
  close(dir);
}

absl::StatusOr<std::string> CachedSha256OfFile(const std::string& path) {
  const char* setting = std::getenv(kHashCacheEnv);
  if (setting != nullptr && std::string(setting) != "on" && std::string(setting) != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat(kHashCacheEnv, "=\"", absl::CHexEscape(setting), "\": expected on or off"));
  }
  std::optional<HashCache> cache = HashCache::Default();
  if (cache) return cache->Sha256(path);
  return daemon::Sha256OfFile(path);
}

}  // namespace constellation::cli
