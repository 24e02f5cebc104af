#pragma once

// A run's process tree and every process's output, built from the bridge's
// JSON lines (events.h), with the format's invariants checked.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/harness/events.h"

namespace constellation::testing {

struct ProcessRecord {
  std::string pid;
  std::string parent;                 // "" for the root
  std::vector<std::string> children;  // in spawn order
  std::string out, err;               // everything written to fd 1 and fd 2
  bool out_eof = false, err_eof = false;
  int exits = 0;
  std::optional<int> code;                               // set if it exited with a code
  std::string signal;                                    // set if it was killed by a signal
  bool memory_exceeded = false;                          // its exit said so
  std::string error;                                     // its exit's error
  std::optional<double> peak_mem, cpu_time;              // its exit's figures
  bool spoke = false;                                    // any line of its own
  size_t first_line = 0, spawn_line = 0, exit_line = 0;  // 0-based stdout lines
  int depth = 0;                                         // root 0
  bool ExitedZero() const { return exits == 1 && code == 0; }
  std::string ExitString() const;  // "code 0", "signal SIGKILL", "never exited"
};

// The process tree and every process's output, as the bridge reported them.
struct Trace {
  std::vector<Event> events;
  std::map<std::string, ProcessRecord> processes;
  std::string root;
  std::vector<std::string> order;  // pids in order of appearance: the root, then as spawned
  // Broken invariants: unparseable lines, a line of a child before its spawn
  // line, a pid spawned twice, output after EOF or exit, a second EOF, a pid
  // that never exits or exits twice, no events at all.
  std::vector<std::string> errors;

  // DESIGN.md's rule, from the exit lines in order: 0 if all exited 0, else
  // the first failure's code (128+n for signal n).
  int ExpectedBridgeCode() const;
  const ProcessRecord* Find(const std::string& pid) const;
  const ProcessRecord& Root() const;
  // Every process whose stdout is exactly `out`.
  std::vector<const ProcessRecord*> WithStdout(const std::string& out) const;
  // Every process whose stdout contains `text`, in order of appearance.
  std::vector<const ProcessRecord*> WithStdoutContaining(absl::string_view text) const;
  // Every "RESULT ..." line of every process (in order of appearance), without the prefix.
  std::vector<std::string> Results() const;
  // The processes depth first: [0] the root, then each child's subtree in spawn order.
  std::vector<const ProcessRecord*> Tree() const;
  std::string Dump() const;  // readable, for failure messages
};
Trace ParseTrace(const std::vector<std::string>& lines);

}  // namespace constellation::testing
