#pragma once

// Small file helpers for key material: bounded reads and atomic writes with a
// mode. (Private directories: lib/process/private_dir.h.)

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

bool Exists(const std::string& path);

}  // namespace constellation::daemon::security
