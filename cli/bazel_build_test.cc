#include "cli/bazel_build.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace constellation::cli {
namespace {

TEST(ValidateLabel, AcceptsLabels) {
  for (const char* label : {"//examples:hello", "//examples", "//:all", "@repo//pkg/sub:t-1.2", "@@repo~1//p:x+y",
                            ":target", "//a/b:c/d.sh", "//pkg:name=x,y@z~"}) {
    EXPECT_TRUE(ValidateLabel(label).ok()) << label << ": " << ValidateLabel(label);
  }
}

TEST(ValidateLabel, RefusesWhatIsNotALabel) {
  for (const char* label : {"//x;id>owned.txt;#", "//x:$(id)", "//x:`id`", "//x y", "//x:a|b", "//x:a&b", "//x\n", "//",
                            "//x:", "//../etc:x", "//a//b:c", "@re po//x", "@repo", "relative:x", "//x:'a'",
                            "//x:\"a\"", "//x:a\\b", "--output_base=/tmp"}) {
    absl::Status status = ValidateLabel(label);
    EXPECT_FALSE(status.ok()) << label;
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("is not a Bazel label"), std::string::npos) << status;
  }
}

TEST(RunCapturingStdout, NoShell) {
  absl::StatusOr<std::string> out = RunCapturingStdout({"echo", "a;id", "$(id)"}, true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "a;id $(id)");
  EXPECT_FALSE(RunCapturingStdout({"false"}, true).ok());
  EXPECT_FALSE(RunCapturingStdout({"/nonexistent/program"}, true).ok());
}

TEST(RunCapturingStdout, InTheGivenDirectory) {
  absl::StatusOr<std::string> out = RunCapturingStdout({"pwd"}, true, "/tmp");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "/tmp");
  EXPECT_FALSE(RunCapturingStdout({"pwd"}, true, "/nonexistent/dir").ok());
}

TEST(BuildLabel, AnInjectedLabelRunsNothing) {
  char dir[] = "/tmp/bazel_build_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(chdir(dir), 0);
  absl::StatusOr<std::string> built = BuildLabel("//x;touch owned.txt;#", dir);
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument) << built.status();
  EXPECT_NE(access("owned.txt", F_OK), 0);
  rmdir(dir);
}

}  // namespace
}  // namespace constellation::cli
