#include "cli/bazel_build.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace constellation::cli {
namespace {

// A package path or a target name: segments separated by '/', none empty,
// "." or "..", made of the characters Bazel names use.
absl::Status ValidateName(absl::string_view name, absl::string_view what, bool may_be_empty) {
  if (name.empty()) {
    return may_be_empty ? absl::OkStatus() : absl::InvalidArgumentError(absl::StrCat("the ", what, " is empty"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && std::strchr("_-.+=,@~/", c) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("the ", what, " contains '", std::string(1, c), "'"));
    }
  }
  for (absl::string_view segment : absl::StrSplit(name, '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return absl::InvalidArgumentError(absl::StrCat("the ", what, " has an empty, \".\" or \"..\" segment"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelParts(absl::string_view label) {
  absl::string_view rest = label;
  if (absl::ConsumePrefix(&rest, "@")) {
    absl::ConsumePrefix(&rest, "@");
    size_t slashes = rest.find("//");
    if (slashes == absl::string_view::npos) return absl::InvalidArgumentError("a repository must be followed by //");
    absl::string_view repo = rest.substr(0, slashes);
    for (char c : repo) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && std::strchr("_-.+~", c) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("the repository name contains '", std::string(1, c), "'"));
      }
    }
    rest.remove_prefix(slashes);
  }
  if (absl::ConsumePrefix(&rest, "//")) {
    size_t colon = rest.find(':');
    absl::Status package = ValidateName(rest.substr(0, colon), "package", /*may_be_empty=*/true);
    if (!package.ok()) return package;
    if (colon == absl::string_view::npos) {
      return rest.empty() ? absl::InvalidArgumentError("no package or target after //") : absl::OkStatus();
    }
    return ValidateName(rest.substr(colon + 1), "target name", /*may_be_empty=*/false);
  }
  if (absl::ConsumePrefix(&rest, ":")) return ValidateName(rest, "target name", /*may_be_empty=*/false);
  return absl::InvalidArgumentError("a label starts with //, @ or :");
}

}  // namespace

bool LooksLikeLabel(absl::string_view target) {
  return absl::StartsWith(target, "//") || absl::StartsWith(target, "@") || absl::StartsWith(target, ":");
}

absl::Status ValidateLabel(absl::string_view label) {
  absl::Status status = ValidateLabelParts(label);
  if (status.ok()) return status;
  return absl::InvalidArgumentError(absl::StrCat("\"", label, "\" is not a Bazel label (", status.message(),
                                                 "); give a label such as //pkg:target, or a path to a binary"));
}

absl::StatusOr<std::string> RunCapturingStdout(const std::vector<std::string>& argv, bool show_stderr,
                                               const std::string& dir) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  if (!show_stderr) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  if (!dir.empty()) posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (error != 0) {
    close(out[0]);
    return absl::FailedPreconditionError(absl::StrCat("cannot run ", argv[0], ": ", std::strerror(error)));
  }
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) output.append(buf, n);
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("`", absl::StrJoin(argv, " "), "` failed (",
                                                      WIFEXITED(status) ? "exit code " : "signal ",
                                                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), ")"));
  }
  return std::string(absl::StripTrailingAsciiWhitespace(output));
}

absl::StatusOr<std::string> BuildLabel(const std::string& label, const std::string& workspace) {
  absl::Status valid = ValidateLabel(label);
  if (!valid.ok()) return valid;
  // bazel build's own output (progress, errors) belongs on stderr: stdout is
  // the program's. Its stdout is captured and passed on to stderr.
  absl::StatusOr<std::string> built =
      RunCapturingStdout({"bazel", "build", "--", label}, /*show_stderr=*/true, workspace);
  if (!built.ok()) return built.status();
  if (!built->empty()) fprintf(stderr, "%s\n", built->c_str());
  absl::StatusOr<std::string> exec_root = RunCapturingStdout({"bazel", "info", "execution_root"}, false, workspace);
  if (!exec_root.ok()) return exec_root.status();
  absl::StatusOr<std::string> path = RunCapturingStdout(
      {"bazel", "cquery", "--output=starlark", "--starlark:expr=target.files_to_run.executable.path", "--", label},
      false, workspace);
  if (!path.ok()) return path.status();
  if (exec_root->empty() || path->empty()) return absl::NotFoundError(absl::StrCat(label, " has no executable"));
  return absl::StrCat(*exec_root, "/", *path);
}

}  // namespace constellation::cli
