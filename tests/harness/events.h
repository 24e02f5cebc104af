#pragma once

// The bridge's JSON output format (DESIGN.md "Output formats") as the
// integration tests read it: one event per line, parsed strictly (exactly the
// fields DESIGN.md names), and EventReader, which follows a running Program's
// events as they arrive. trace.h builds a whole run's process tree.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/harness/program.h"

namespace constellation::testing {

struct Event {
  enum Type { kSpawn, kOutput, kEof, kExit } type = kOutput;
  std::string pid;
  std::string child;               // kSpawn
  int fd = 0;                      // kOutput, kEof
  std::string data;                // kOutput, base64-decoded
  std::optional<int> code;         // kExit
  std::string signal;              // kExit: "SIGABRT", ...
  bool memory_exceeded = false;    // kExit: killed for exceeding its memory limit
  std::string error;               // kExit: why, when not its own doing
  std::optional<double> peak_mem;  // kExit: bytes, as measured by the monitor
  std::optional<double> cpu_time;  // kExit: seconds
  size_t line = 0;                 // 0-based line number on stdout
};
// Parses one line of the JSON format, checking it has exactly DESIGN.md's
// fields: 7-hex-digit pids, canonical padded base64 data, fd 1 or 2, a known
// signal name.
absl::StatusOr<Event> ParseEvent(absl::string_view line);

int SignalNumber(const std::string& name);  // "SIGKILL" -> 9; -1 if unknown

// Follows a running Program's JSON events as they arrive.
class EventReader {
 public:
  explicit EventReader(Program* program) : program_(program) {}
  // Reads events until `done` is true for one (then true), or the program
  // ends first (false). Lines that do not parse fail the test.
  bool ReadUntil(const std::function<bool(const Event&)>& done);
  // Until `pid` has written `text` to stdout (anywhere in its output so far).
  bool ReadUntilStdout(const std::string& pid, const std::string& text);

  std::string root;                           // the first pid that spoke
  std::map<std::string, std::string> out;     // stdout so far, by pid
  std::map<std::string, std::string> parent;  // spawned pid -> parent
  std::set<std::string> exited;

 private:
  Program* program_;
};

}  // namespace constellation::testing
