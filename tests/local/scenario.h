#pragma once

// Runs the local-mode scenarios program (tests/local/scenarios.cc) under the
// bridge for the local integration tests, on the shared harness
// (tests/harness): Program, the JSON events and the process tree.

#include <string>
#include <vector>

#include "tests/harness/events.h"
#include "tests/harness/proc_fs.h"
#include "tests/harness/program.h"
#include "tests/harness/run.h"
#include "tests/harness/trace.h"

namespace constellation::testing {

// The scenarios binary in this test's runfiles.
std::string ScenarioPath();

// Runs the scenarios binary to the end. With the JSON format it also checks
// (with EXPECTs) that the trace keeps its invariants and that the bridge's
// exit code follows DESIGN.md's rule from the reported exits, and, for every
// format, that no process of the program is left (within 10 s) after it exits.
RunResult RunScenario(RunOptions options);
RunResult RunScenario(std::vector<std::string> args);

}  // namespace constellation::testing
