#pragma once

// How the bridge prints what processes do: DESIGN.md's human format (the
// default) and the JSON-lines machine format (CONSTELLATION_FORMAT=json).
// Used by the local bridge and, in cluster mode, by cdeploy.

#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/core/pid.h"
#include "proto/process.pb.h"

namespace constellation::internal {

enum class OutputFormat { kHuman, kJson };

// Reads CONSTELLATION_FORMAT's value: unset or "" or "human" is kHuman, "json"
// is kJson; anything else is an error that lists the accepted values.
absl::StatusOr<OutputFormat> ParseOutputFormat(const char* value);

// Receives process events in the order the bridge decided to show them.
// Not thread-safe: one bridge thread calls it.
class OutputFormatter {
 public:
  virtual ~OutputFormatter() = default;
  virtual void Spawn(const Pid& parent, const Pid& child) = 0;
  virtual void Output(const Pid& pid, int fd, absl::string_view data) = 0;
  virtual void Eof(const Pid& pid, int fd) = 0;
  virtual void Exit(const Pid& pid, const pb::ExitEvent& exit) = 0;
  // Flushes buffered output to the streams.
  virtual void Flush() = 0;
};

// `out` and `err` must outlive the formatter. `color` adds ANSI colours to pids;
// `verbose` adds each process's peak memory and CPU time to its exit line.
std::unique_ptr<OutputFormatter> MakeHumanFormatter(FILE* out, FILE* err, bool color, bool verbose = false);

// Whether to colour what goes to a stream: only on a terminal, and not when
// $NO_COLOR is set and not empty (no-color.org). ColorFor is the rule with
// both facts given; UseColor asks isatty(fd) and the environment.
bool ColorFor(bool terminal, const char* no_color);
bool UseColor(int fd);

// CONSTELLATION_VERBOSE's value: set and not "" or "0" turns verbose on.
inline constexpr char kVerboseEnv[] = "CONSTELLATION_VERBOSE";
bool VerboseFromEnv(const char* value);
std::unique_ptr<OutputFormatter> MakeJsonFormatter(FILE* out);

// "exited", "exited: 1", "exited: SIGABRT", "killed: exceeded its memory
// limit of 100 MiB": the human words for an exit; `verbose` appends
// " [peak memory 12 MiB, cpu 0.052 s]".
std::string DescribeExit(const pb::ExitEvent& exit, bool verbose = false);

// "SIGABRT" for 6; "SIG<n>" for numbers without a name.
std::string SignalName(int signal);

// The bridge's exit code for one process's exit: its code, 128+n for signal n.
int ExitCodeOf(const pb::ExitEvent& exit);

}  // namespace constellation::internal
