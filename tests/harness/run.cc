#include "tests/harness/run.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {

std::string RunResult::Dump() const {
  std::string text = absl::StrCat("started process: ", exit.ToString(), "\n", trace.Dump());
  if (!err.empty()) absl::StrAppend(&text, "its stderr:\n", Tail(err), "\n");
  return text;
}

RunResult Finish(Program& program, const RunChecks& checks) {
  RunResult result;
  result.exit = program.Wait();
  result.out = program.stdout_text();
  result.err = program.stderr_text();
  result.lines = program.lines();
  if (checks.json) result.trace = ParseTrace(result.lines);
  if (checks.json && !result.exit.timed_out) {
    EXPECT_TRUE(result.trace.errors.empty()) << checks.what << " broke the JSON format's invariants:\n"
                                             << result.trace.Dump() << "stderr:\n"
                                             << Tail(result.err) << "\n"
                                             << checks.context;
    EXPECT_TRUE(result.out.empty() || result.out.back() == '\n')
        << checks.what << ": stdout does not end with a newline: " << Tail(result.out, 300);
    if (result.trace.errors.empty()) {
      EXPECT_EQ(result.exit.ShellCode(), result.trace.ExpectedBridgeCode())
          << checks.what << ": the exit code (" << result.exit.ToString() << ") does not follow the first failure:\n"
          << result.trace.Dump() << checks.context;
    }
  }
  if (checks.quiet_stderr && !result.exit.timed_out) {
    EXPECT_EQ(result.err, "") << checks.what << " wrote to stderr in JSON mode";
  }
  if (result.exit.timed_out) {
    // Program's hang guard failed the test with the raw output; the decoded trace helps more.
    std::cerr << checks.what << " timed out; what it reported:\n" << result.Dump() << checks.context;
  }
  if (checks.group_empty) {
    std::vector<pid_t> left = program.WaitGroupEmpty(absl::Seconds(10));
    EXPECT_TRUE(left.empty()) << checks.what << " left " << left.size()
                              << " processes behind after it exited, e.g. OS pid " << (left.empty() ? 0 : left[0]);
  }
  return result;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

}  // namespace constellation::testing
