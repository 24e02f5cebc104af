#pragma once

// BinaryCache: binaries stored by the SHA-256 of their bytes, so a binary is
// uploaded to a node once however many deployments and processes use it.
// An upload is written to a temporary file and only renamed into place once
// its bytes hash to the id it claimed: a truncated or corrupted upload is
// rejected and never executed.
//
// The daemon runs what is in the cache (as root, unless --run-as), so the
// cache is its alone: the directory is created 0700 and refused when it
// exists with another owner, group or world write, or as a symlink (see
// lib/process/private_dir.h); binaries are stored read-only (0500); and a
// binary is checked against its SHA-256 before it is run (VerifiedPath).
//
// Thread-safe: concurrent uploads (even of the same binary) each write their
// own temporary file; the rename is atomic.

#include <sys/stat.h>

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon {

// The default of --max-binary-size.
inline constexpr uint64_t kDefaultMaxBinarySize = uint64_t{4} << 30;

// Lower-case hex SHA-256 of a file's bytes.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);
// Lower-case hex SHA-256 of what `fd` holds from where it is to its end
// (`path` only names it in errors).
absl::StatusOr<std::string> Sha256OfFd(int fd, const std::string& path);
// Lower-case hex SHA-256 of `bytes`.
std::string Sha256OfBytes(absl::string_view bytes);

class BinaryCache {
 public:
  // Creates `dir` (0700) if needed, or checks the one that is there. A binary
  // whose declared size is over `max_binary_size` is refused.
  static absl::StatusOr<std::unique_ptr<BinaryCache>> Create(std::string dir,
                                                             uint64_t max_binary_size = kDefaultMaxBinarySize);
  // Takes the lock once: a gRPC handler's last Remember is ordered before
  // the map goes, for TSan too (the server's shutdown wait is invisible to it).
  ~BinaryCache() { std::lock_guard<std::mutex> lock(mu_); }

  // Whether the binary is cached and passes VerifiedPath.
  bool Has(const pb::BinaryId& id) const;

  // The path of a cached binary, once checked to be what `id` names: a
  // regular file (not a symlink) owned by this process's uid, writable by no
  // one else, of the declared size, whose bytes hash to the id. The hash is
  // computed once per daemon lifetime per file (an upload this daemon stored
  // counts as hashed) and again whenever the file's inode, size, mtime or
  // ctime change, so a file planted before the daemon started or changed
  // since is caught. A file that fails is deleted (it can be uploaded again).
  // Between this check and the exec only this uid can change the file (the
  // directory is 0700).
  absl::StatusOr<std::string> VerifiedPath(const pb::BinaryId& id) const;

  // Another daemon of this machine has just linked the cached binary into
  // its own cache (Adopt), which moved the file's ctime and nothing else: it
  // stays verified (not hashed again) if its inode, size and mtime are still
  // what was hashed. (A write would move the mtime; one that put the mtime
  // back in that moment takes this uid, which may change the file between
  // VerifiedPath and the exec anyway.)
  void LinkedElsewhere(const pb::BinaryId& id) const;

  // Where a cached binary is, unchecked: for reading it (e.g. to upload it
  // to a node), never for running it.
  std::string PathOf(const pb::BinaryId& id) const;

  // One upload in progress. Not thread-safe; destroying it unfinished
  // discards what was written.
  class Upload {
   public:
    virtual ~Upload() = default;
    // An error, and nothing written, once the data goes past the declared size.
    virtual absl::Status Append(absl::string_view data) = 0;
    // Checks size and hash, then makes the binary available (read-only, executable).
    virtual absl::Status Finish() = 0;
    // A new descriptor (close-on-exec; the caller closes it) of the file
    // being written, for reading what was appended so far with pread; once
    // finished, it is the stored file. -1 on error.
    virtual int OpenForReading() const = 0;
  };
  // An error for a malformed id (not 64 hex characters), and
  // RESOURCE_EXHAUSTED for a declared size over the limit (before anything
  // is written).
  absl::StatusOr<std::unique_ptr<Upload>> Begin(const pb::BinaryId& id);

  // Copies a local file in (the master caches what cdeploy sends it this way
  // too, through Begin). Verifies the hash like an upload.
  absl::Status AddFile(const pb::BinaryId& id, const std::string& path);

  // Takes in a binary another daemon of this machine (the master) stored at
  // `path`, without a second copy: a hard link to it, renamed into place
  // like an upload. `path` comes from the network, so the file is checked as
  // an upload's bytes would be: an absolute path to a regular file (not a
  // symlink), owned by this process's uid, writable by no one, of the
  // declared size, whose bytes hash to `id`, unchanged while it was hashed.
  // FAILED_PRECONDITION when it is not, or when it is on another filesystem;
  // nothing is added then.
  absl::Status Adopt(const pb::BinaryId& id, const std::string& path);

  const std::string& dir() const { return dir_; }
  uint64_t max_binary_size() const { return max_binary_size_; }

  // What identifies a file's contents as verified: if any of these change,
  // it is hashed again.
  struct Stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    bool operator==(const Stamp&) const = default;
  };
  static Stamp StampOf(const struct stat& st);

 private:
  BinaryCache(std::string dir, uint64_t max_binary_size) : dir_(std::move(dir)), max_binary_size_(max_binary_size) {}
  void Remember(const std::string& sha256, const Stamp& stamp) const;

  const std::string dir_;
  const uint64_t max_binary_size_;
  mutable std::mutex mu_;
  mutable std::map<std::string, Stamp> verified_;  // guarded by mu_: sha256 -> the file as last hashed
};

// An error unless `id` names a binary properly (64 lower-case hex characters).
absl::Status ValidateBinaryId(const pb::BinaryId& id);

// This machine's boot id (/proc/sys/kernel/random/boot_id): daemons that
// share it share a kernel, and may share a filesystem. Empty if unreadable.
std::string BootId();

}  // namespace constellation::daemon
