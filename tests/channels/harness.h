#pragma once

// A small harness for the channel integration tests: runs the scenarios
// program (tests/channels/scenarios.cc) as a subprocess in its own process
// group with CONSTELLATION_FORMAT=json, collects stdout and stderr, enforces a
// hang guard (the whole group is SIGKILLed and the test fails), always cleans
// the group up, and parses the bridge's JSON lines into one record per process.

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace constellation::channel_testing {

// ---- the JSON format (DESIGN.md "Output formats") -------------------------------------

struct JsonValue {
  enum Kind { kString, kNumber, kBool } kind = kString;
  std::string str;
  long long number = 0;
  bool boolean = false;
};
// One flat JSON object whose values are strings, integers or booleans.
absl::StatusOr<std::map<std::string, JsonValue>> ParseFlatJson(absl::string_view line);

// ---- one run ----------------------------------------------------------------------------

struct Process {
  std::string pid;
  std::string parent;  // "" for the root
  std::vector<std::string> children;
  std::string out, err;  // fd 1 and fd 2, decoded
  bool out_eof = false, err_eof = false;
  int exits = 0;
  std::optional<int> code;  // exited with this code
  std::string signal;       // or was killed by this signal ("SIGKILL")
  bool ExitedZero() const { return exits == 1 && code == 0; }
  std::string ExitString() const;
};

struct RunResult {
  bool timed_out = false;
  bool bridge_exited = false;  // normally, with bridge_code
  int bridge_code = -1;
  int bridge_signal = 0;
  std::string raw_out, raw_err;     // the bridge's stdout (JSON lines) and stderr
  std::vector<std::string> errors;  // unparseable lines, broken invariants
  std::string root;
  std::vector<std::string> order;  // pids in order of first appearance
  std::map<std::string, Process> processes;
  absl::Duration elapsed;

  // The shell's view of the bridge's exit: code, or 128 + signal.
  int BridgeShellCode() const { return bridge_exited ? bridge_code : 128 + bridge_signal; }
  // DESIGN.md's rule from the exit events in order: 0 if all exited 0,
  // otherwise the first failure's code (128 + n for signal n).
  int ExpectedBridgeCode() const;
  const Process* Find(const std::string& pid) const;
  const Process& Root() const;
  // Every process whose stdout contains `text`.
  std::vector<const Process*> WithStdout(absl::string_view text) const;
  // Every "RESULT ..." line of every process, without the prefix.
  std::vector<std::string> Results() const;
  std::string Dump() const;  // readable, for failure messages
};

std::string ScenarioPath();  // the scenarios program in this test's runfiles

// Runs the scenarios program with `args` (argv[1...]) to the end, or until
// `timeout` (then the whole process group is killed and the test fails). Also
// fails the test (ADD_FAILURE) on any JSON line that does not parse, a broken
// invariant of the trace, a bridge exit code that does not follow the rule
// from the reported exits, or a process of the program left behind after the
// bridge exited.
RunResult RunScenario(const std::vector<std::string>& args, absl::Duration timeout = absl::Seconds(60));

int SignalNumber(const std::string& name);  // "SIGKILL" -> 9, -1 if unknown

// ---- common expectations (gtest) ------------------------------------------------------------

// The run finished, there were `processes` processes (root included), every one
// exited with code 0, the bridge exited 0, and nothing wrote "FAIL" to stderr.
void ExpectAllExitedZero(const RunResult& run, size_t processes);
// Exactly `times` "RESULT ..." lines start with `prefix`; returns the first one.
std::string ExpectResult(const RunResult& run, absl::string_view prefix, size_t times = 1);
// The processes in spawn order: [0] the root, then its children, depth first.
std::vector<const Process*> Tree(const RunResult& run);

}  // namespace constellation::channel_testing
