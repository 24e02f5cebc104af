#include "cli/workspace.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace constellation::cli {
namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// "/a/b" for "/a/b/c", "/" for "/a", "" for "/" (no parent).
std::string Parent(const std::string& dir) {
  if (dir == "/" || dir.empty()) return "";
  size_t slash = dir.find_last_of('/', dir.size() - 1);
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : dir.substr(0, slash);
}

std::string Join(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return dir == "/" ? "/" + path : absl::StrCat(dir, "/", path);
}

}  // namespace

bool IsWorkspaceRoot(const std::string& dir) {
  for (const char* name : {"WORKSPACE", "WORKSPACE.bazel", "MODULE.bazel"}) {
    if (IsFile(Join(dir, name))) return true;
  }
  return false;
}

absl::StatusOr<std::string> FindWorkspace(const std::string& flag, const std::string& bazel_run_workspace,
                                          const std::string& cwd) {
  if (!flag.empty()) {
    std::string dir = Join(cwd, flag);
    if (!IsWorkspaceRoot(dir)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--workspace=", flag, " is not a Bazel workspace (no WORKSPACE, WORKSPACE.bazel or MODULE.bazel)"));
    }
    return dir;
  }
  if (!bazel_run_workspace.empty()) {
    if (!IsDirectory(bazel_run_workspace)) {
      return absl::FailedPreconditionError(
          absl::StrCat("BUILD_WORKSPACE_DIRECTORY=", bazel_run_workspace, " is not a directory"));
    }
    return bazel_run_workspace;
  }
  // Trailing slashes would make Parent() see an empty last component.
  std::string dir = cwd;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  for (; !dir.empty(); dir = Parent(dir)) {
    if (IsWorkspaceRoot(dir)) return dir;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no Bazel workspace to build the label in: neither ", cwd,
                   " nor a directory above it has a WORKSPACE, WORKSPACE.bazel or MODULE.bazel file; run cdeploy in "
                   "your workspace, or name it with --workspace=DIR"));
}

}  // namespace constellation::cli
