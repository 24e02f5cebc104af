#pragma once

// Runs the channel scenarios program (tests/channels/scenarios_main.cc and
// its topic files) under the local bridge with CONSTELLATION_FORMAT=json, on
// the shared harness (tests/harness), plus the expectations the channel tests
// share.

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/harness/run.h"
#include "tests/harness/trace.h"

namespace constellation::testing {

// The scenarios program in this test's runfiles, or $CHANNEL_SCENARIOS.
std::string ChannelScenarioPath();

// Runs the scenarios program with `args` (argv[1...]) to the end, or until
// `timeout` (then the whole process group is killed and the test fails). Also
// fails the test (EXPECT) on any JSON line that does not parse, a broken
// invariant of the trace, stdout not ending with a newline, a bridge exit
// code that does not follow the rule from the reported exits, anything the
// bridge wrote to stderr, or a process of the program left behind after the
// bridge exited.
RunResult RunChannelScenario(const std::vector<std::string>& args, absl::Duration timeout = absl::Seconds(60));

// The run finished, there were `processes` processes (root included), every one
// exited with code 0, the bridge exited 0, and nothing wrote "FAIL" to stderr.
void ExpectAllExitedZero(const RunResult& run, size_t processes);
// Exactly `times` "RESULT ..." lines start with `prefix`; returns the first one.
std::string ExpectResult(const RunResult& run, absl::string_view prefix, size_t times = 1);

}  // namespace constellation::testing
