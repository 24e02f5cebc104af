#pragma once

// Which Bazel workspace cdeploy builds a //label in: the one the user named,
// the one `bazel run` started cdeploy from, or the one the current directory
// is in. Plain functions; they only look at the file system.

#include <string>

#include "absl/status/statusor.h"

namespace constellation::cli {

// Whether `dir` holds a WORKSPACE, WORKSPACE.bazel or MODULE.bazel file.
bool IsWorkspaceRoot(const std::string& dir);

// The workspace, first of:
//   - `flag` (--workspace=DIR): it must be a workspace root;
//   - `bazel_run_workspace` ($BUILD_WORKSPACE_DIRECTORY, which `bazel run`
//     sets to the workspace it ran in): it must be a directory;
//   - the nearest directory at or above `cwd` that is a workspace root.
// A relative `flag` is taken relative to `cwd`. The error (FailedPrecondition
// or InvalidArgument) says where cdeploy looked and how to name a workspace.
absl::StatusOr<std::string> FindWorkspace(const std::string& flag, const std::string& bazel_run_workspace,
                                          const std::string& cwd);

}  // namespace constellation::cli
