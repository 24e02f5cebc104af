#include "cli/workspace.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace constellation::cli {
namespace {

using ::testing::HasSubstr;

// A temporary directory tree, removed at the end.
class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (getenv("TEST_TMPDIR") ? std::string(getenv("TEST_TMPDIR")) : "/tmp") + "/ws.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::string command = "rm -rf " + root_;  // our own mkdtemp path: no user input
    ASSERT_EQ(system(command.c_str()), 0);
  }
  std::string Dir(const std::string& relative) {
    std::string path = root_;
    size_t start = 0;
    while (start <= relative.size()) {
      size_t slash = relative.find('/', start);
      if (slash == std::string::npos) slash = relative.size();
      path += "/" + relative.substr(start, slash - start);
      mkdir(path.c_str(), 0755);
      start = slash + 1;
    }
    return path;
  }
  void Touch(const std::string& path) { std::ofstream(path).put('\n'); }

  std::string root_;
};

TEST_F(WorkspaceTest, TheNearestWorkspaceAtOrAboveTheCurrentDirectory) {
  std::string ws = Dir("ws");
  std::string deep = Dir("ws/a/b/c");
  Touch(ws + "/WORKSPACE");
  EXPECT_EQ(*FindWorkspace("", "", deep), ws);
  EXPECT_EQ(*FindWorkspace("", "", deep + "/"), ws);
  EXPECT_EQ(*FindWorkspace("", "", ws), ws);
  // A nested workspace is nearer.
  std::string inner = Dir("ws/a");
  Touch(inner + "/MODULE.bazel");
  EXPECT_EQ(*FindWorkspace("", "", deep), inner);
  std::string other = Dir("other");
  Touch(other + "/WORKSPACE.bazel");
  EXPECT_EQ(*FindWorkspace("", "", other), other);
  // A directory called WORKSPACE is no workspace file.
  Dir("fake/WORKSPACE");
  EXPECT_FALSE(IsWorkspaceRoot(root_ + "/fake"));
}

TEST_F(WorkspaceTest, NoWorkspaceSaysSo) {
  // The temporary directory may sit inside a workspace (Bazel's sandbox does
  // not, /tmp does not): only check the message when none is found.
  std::string lost = Dir("lost/here");
  absl::StatusOr<std::string> ws = FindWorkspace("", "", lost);
  if (ws.ok()) GTEST_SKIP() << "the test's temporary directory is inside the workspace " << *ws;
  EXPECT_EQ(ws.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ws.status().message(), HasSubstr("no Bazel workspace"));
  EXPECT_THAT(ws.status().message(), HasSubstr(lost));
  EXPECT_THAT(ws.status().message(), HasSubstr("--workspace=DIR"));
}

TEST_F(WorkspaceTest, TheFlagWinsAndMustBeAWorkspace) {
  std::string ws = Dir("ws");
  Touch(ws + "/WORKSPACE");
  std::string cwd = Dir("elsewhere");
  std::string run = Dir("run");
  EXPECT_EQ(*FindWorkspace(ws, run, cwd), ws);
  EXPECT_EQ(*FindWorkspace("../ws", run, cwd), cwd + "/../ws");  // relative to the current directory
  absl::StatusOr<std::string> bad = FindWorkspace(cwd, run, cwd);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("is not a Bazel workspace"));
}

TEST_F(WorkspaceTest, BazelRunsWorkspaceBeforeTheCurrentDirectory) {
  std::string ws = Dir("ws");
  Touch(ws + "/WORKSPACE");
  std::string run = Dir("run");
  EXPECT_EQ(*FindWorkspace("", run, ws), run);
  absl::StatusOr<std::string> gone = FindWorkspace("", root_ + "/missing", ws);
  EXPECT_FALSE(gone.ok());
  EXPECT_THAT(gone.status().message(), HasSubstr("BUILD_WORKSPACE_DIRECTORY"));
}

}  // namespace
}  // namespace constellation::cli
