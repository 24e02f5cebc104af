#include "tests/channels/scenario.h"

#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/harness/program.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {

std::string ChannelScenarioPath() {
  if (const char* explicit_path = getenv("CHANNEL_SCENARIOS")) return explicit_path;
  return RunfilePath("tests/channels/scenarios");
}

RunResult RunChannelScenario(const std::vector<std::string>& args, absl::Duration timeout) {
  RunOptions options;
  options.args = args;
  options.timeout = timeout;
  RunChecks checks;
  checks.what = absl::StrCat("scenario ", absl::StrJoin(args, " "));
  checks.quiet_stderr = true;
  Program program(ChannelScenarioPath(), std::move(options));
  return Finish(program, checks);
}

void ExpectAllExitedZero(const RunResult& run, size_t processes) {
  ASSERT_FALSE(run.exit.timed_out);
  EXPECT_EQ(run.trace.processes.size(), processes) << run.Dump();
  for (const std::string& pid : run.trace.order) {
    const ProcessRecord& p = run.trace.processes.at(pid);
    EXPECT_TRUE(p.ExitedZero()) << "process " << pid << ": " << p.ExitString() << "\n" << run.Dump();
    EXPECT_FALSE(absl::StrContains(p.err, "FAIL")) << run.Dump();
  }
  EXPECT_TRUE(run.exit.exited) << run.Dump();
  EXPECT_EQ(run.exit.code, 0) << run.Dump();
}

std::string ExpectResult(const RunResult& run, absl::string_view prefix, size_t times) {
  std::vector<std::string> found;
  for (const std::string& r : run.trace.Results()) {
    if (absl::StartsWith(r, prefix)) found.push_back(r);
  }
  EXPECT_EQ(found.size(), times) << "RESULT lines starting with \"" << prefix << "\"\n" << run.Dump();
  return found.empty() ? "" : found[0];
}

}  // namespace constellation::testing
