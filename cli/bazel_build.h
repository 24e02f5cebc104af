#pragma once

// cdeploy's "build the label first": runs bazel with an argument vector (no
// shell anywhere: a label such as "//x;id>owned.txt;#" is an error, never a
// command) and finds the executable it built.
//
// Plain functions; they block while bazel runs.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace constellation::cli {

// Whether cdeploy should treat `target` as a Bazel label rather than a file:
// it starts with "//", "@" or ":".
bool LooksLikeLabel(absl::string_view target);

// An InvalidArgument error that says what is wrong unless `label` is a Bazel
// label: ["@repo" or "@@repo"] "//" package [":" target], or ":" target,
// with package and target names made of letters, digits and
// "_-.+=,@~/" (no "." or ".." path segments, no empty ones).
absl::Status ValidateLabel(absl::string_view label);

// Runs `argv` (argv[0] looked up on PATH) in directory `dir` ("": ours) with
// stdin from /dev/null; returns its stdout (trailing whitespace stripped), or
// an error with its exit code. Its stderr goes to ours when `show_stderr`,
// else to /dev/null.
absl::StatusOr<std::string> RunCapturingStdout(const std::vector<std::string>& argv, bool show_stderr,
                                               const std::string& dir = "");

// Validates `label`, builds it in the Bazel workspace `workspace` (a
// directory; cli/workspace.h finds it) with bazel's output on our stderr, and
// returns the path of its executable.
absl::StatusOr<std::string> BuildLabel(const std::string& label, const std::string& workspace);

}  // namespace constellation::cli
