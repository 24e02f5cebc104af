#pragma once

// One run of a program under test, to the end, with the checks every suite
// makes: with the JSON format, that the trace keeps the format's invariants,
// that stdout ends with a newline and that the started process's exit code
// follows DESIGN.md's rule from the reported exits; optionally that nothing
// of the program's process group is left (within 10 s) after it exits and
// that it wrote nothing to stderr. Failures are EXPECTs (the test goes on).

#include <string>
#include <vector>

#include "tests/harness/program.h"
#include "tests/harness/trace.h"

namespace constellation::testing {

struct RunResult {
  ExitStatus exit;
  std::string out, err;
  std::vector<std::string> lines;
  Trace trace;               // empty unless the run used the JSON format
  std::string Dump() const;  // the exit, the trace and stderr, for failure messages
};

struct RunChecks {
  std::string what;           // names the run in failure messages: "scenario \"exit0\""
  bool json = true;           // parse stdout as the JSON format and check it
  bool group_empty = true;    // nothing of the process group outlives the started process
  bool quiet_stderr = false;  // the started process wrote nothing to stderr
  std::string context;        // appended to failure messages (the daemons' state, say)
};

// Waits for `program` to exit, collects its output and makes the checks. A
// run that timed out has failed already (Program's hang guard): its trace is
// parsed but not checked.
RunResult Finish(Program& program, const RunChecks& checks);

// Lines of `text` (a trailing piece without '\n' is a line too).
std::vector<std::string> Lines(const std::string& text);

}  // namespace constellation::testing
