#pragma once

// BinaryCache: binaries stored by the SHA-256 of their bytes, so a binary is
// uploaded to a node once however many deployments and processes use it.
// An upload is written to a temporary file and only renamed into place once
// its bytes hash to the id it claimed: a truncated or corrupted upload is
// rejected and never executed.
//
// Thread-safe: concurrent uploads (even of the same binary) each write their
// own temporary file; the rename is atomic.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon {

// Lower-case hex SHA-256 of a file's bytes.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);

class BinaryCache {
 public:
  // Creates `dir` if needed.
  static absl::StatusOr<std::unique_ptr<BinaryCache>> Create(std::string dir);

  bool Has(const pb::BinaryId& id) const;
  // Where a cached binary is (valid once Has()).
  std::string PathOf(const pb::BinaryId& id) const;

  // One upload in progress. Not thread-safe; destroying it unfinished
  // discards what was written.
  class Upload {
   public:
    virtual ~Upload() = default;
    virtual absl::Status Append(absl::string_view data) = 0;
    // Checks size and hash, then makes the binary available (executable).
    virtual absl::Status Finish() = 0;
  };
  // An error for a malformed id (not 64 hex characters).
  absl::StatusOr<std::unique_ptr<Upload>> Begin(const pb::BinaryId& id);

  // Copies a local file in (the master caches what cdeploy sends it this way
  // too, through Begin). Verifies the hash like an upload.
  absl::Status AddFile(const pb::BinaryId& id, const std::string& path);

  const std::string& dir() const { return dir_; }

 private:
  explicit BinaryCache(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// An error unless `id` names a binary properly (64 lower-case hex characters).
absl::Status ValidateBinaryId(const pb::BinaryId& id);

}  // namespace constellation::daemon
