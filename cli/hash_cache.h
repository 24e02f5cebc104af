#pragma once

// HashCache: the SHA-256 of the binaries cdeploy submits, remembered by what
// stat() says of each file, so that submitting an unchanged binary again does
// not read and hash it (11 ms for 20 MiB: a fifth of a cached deploy, and on
// its critical path). Git's index does the same for the files it tracks.
//
// An entry maps (device, inode, size, mtime, ctime) to a SHA-256; it is one
// small file per inode in the cache directory. A lookup uses an entry only if
// all five match the file's stat now. An entry is written only when the file
// cannot have changed unseen:
//  - its stat was the same before and after hashing;
//  - its mtime and ctime are older than the hash's start by more than
//    kRacyMargin: a later change then stamps a later time (the kernel stamps
//    files from a clock that ticks every few ms; Git calls files changed
//    within that tick of being hashed "racily clean");
//  - its times have a nanosecond part (a filesystem that keeps whole seconds
//    could hide a second change in the same second);
//  - it is on a local filesystem (ext4, XFS, Btrfs, tmpfs, overlayfs, ZFS,
//    F2FS): elsewhere the times come from another machine's clock.
// No user can set a ctime, so a change that restores the size and mtime still
// misses. CONSTELLATION_HASH_CACHE=off turns the cache off (on, the default,
// or unset keeps it; anything else is an error).
//
// What is read from the cache directory is checked like any input: an entry
// is at most kMaxEntry bytes and must parse exactly, or it is ignored (and
// rewritten), and only a regular file is read; the directory is used only if
// it is this user's alone (internal::EnsurePrivateDir, parents included),
// checked again on an fd that entries are then opened relative to. Entries are written to a temporary
// file and renamed, so concurrent cdeploys at worst hash twice. Entries are
// never evicted: one small file per binary inode ever deployed. As for Git, a
// write through an mmap that leaves mtime as it was goes unseen.
//
// Thread-compatible.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/binary_cache.h"

namespace constellation::cli {

inline constexpr char kHashCacheEnv[] = "CONSTELLATION_HASH_CACHE";

class HashCache {
 public:
  static constexpr absl::Duration kRacyMargin = absl::Milliseconds(100);
  static constexpr size_t kMaxEntry = 256;

  struct Options {
    std::string dir;  // made (0700) if missing
    // Lower-case hex SHA-256 of an open file (daemon::Sha256OfFd by default).
    std::function<absl::StatusOr<std::string>(int fd, const std::string& path)> hasher;
    std::function<absl::Time()> now;         // absl::Now by default
    std::function<bool(int fd)> local_file;  // the filesystem check above (of the open file) by default
  };

  explicit HashCache(Options options);

  // The cache cdeploy uses: $XDG_CACHE_HOME/constellation/sha256, else
  // $HOME/.cache/constellation/sha256. nullopt if CONSTELLATION_HASH_CACHE is
  // "off", no home is known, or the directory is not this user's alone.
  static std::optional<HashCache> Default();

  // The file's lower-case hex SHA-256: remembered if its stamp matches, else
  // computed (and remembered when that is safe, see above). It is read and
  // stat()ed through one open fd, so a file renamed over it meanwhile cannot
  // lend it its hash. NOT_FOUND if the file cannot be opened.
  absl::StatusOr<std::string> Sha256(const std::string& path);

 private:
  using Stamp = daemon::BinaryCache::Stamp;
  std::optional<std::string> Lookup(const Stamp& stamp) const;
  bool MayRemember(const Stamp& stamp, absl::Time hashed_from, int fd) const;
  void Remember(const Stamp& stamp, const std::string& sha) const;
  std::string EntryName(const Stamp& stamp) const;

  Options options_;
};

// A file's SHA-256 through the default cache, or hashed if there is none.
// INVALID_ARGUMENT if CONSTELLATION_HASH_CACHE is set to neither "on" nor "off".
absl::StatusOr<std::string> CachedSha256OfFile(const std::string& path);

}  // namespace constellation::cli
