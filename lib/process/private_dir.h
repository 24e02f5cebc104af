#pragma once

// Private directories: where the daemon keeps binaries it will run and where
// the bridge and the node agent put their unix sockets. A directory someone
// else could write (or swap) is a way to make us run their file or talk to
// their socket, so every such directory is ours alone: owned by this
// process's effective uid, mode 0700 (no group or world write at least), not
// a symlink, and reached through parents that no one else can rename it in.
//
// Plain functions; thread-safe.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace constellation::internal {

// Creates `path` (and missing parents) with mode 0700 and checks it. A
// directory that already exists is accepted only if it passes the checks
// below; otherwise a FailedPrecondition error says what is wrong with it
// and what to do.
absl::Status EnsurePrivateDir(const std::string& path);

// An error unless `path` is a directory (not a symlink) owned by the
// effective uid with no group or world write permission, and every parent
// is owned by root or the effective uid and is either not writable by
// others or sticky (like /tmp).
absl::Status CheckPrivateDir(const std::string& path);

// A fresh private directory (mkdtemp: unique, created 0700, never one that
// existed): "$XDG_RUNTIME_DIR/constellation-<tag>-<pid>-XXXXXX" when that is
// set and passes CheckPrivateDir, else
// "/tmp/constellation-<uid>-<tag>-<pid>-XXXXXX". The caller removes it; ones
// this uid left with the same tag whose process is gone (SIGKILLed) are
// removed here first.
absl::StatusOr<std::string> MakePrivateTempDir(absl::string_view tag);

}  // namespace constellation::internal
