#pragma once

// Small file helpers for key material and private directories: bounded reads,
// atomic writes with a mode, and directories only their owner may use.

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace constellation::daemon::security {

// Reads a whole file of at most `max_bytes`; a larger one is an error (a
// certificate or key file is a few KiB: anything else is not one).
absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes);

// Writes `data` to `path` with `mode` (a temporary file renamed into place,
// so a reader never sees half a key).
absl::Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode);

// Creates `dir` (and missing parents, 0700) or checks an existing one: a real
// directory (not a symlink) owned by this user (or root) that no other user
// may write. The clear error says what is wrong and how to fix it.
absl::Status EnsurePrivateDir(const std::string& dir);

bool Exists(const std::string& path);

}  // namespace constellation::daemon::security
