#pragma once

// Runs one measurement's program for //bench:compare: in a process group of
// its own (so a time limit or Ctrl-C ends everything it started: B, our
// bridge and monitors, mpirun's ranks), with its output in a log file.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace compare {

// Runs argv (argv[0] looked up in PATH if it has no slash), stdin from
// /dev/null, stdout and stderr to `log`, without the CONSTELLATION* variables
// of the driver's own environment. SIGTERM to the group after `timeout_s`
// (SIGKILL 3 s later); whatever is left of the group is killed once it exits.
// OK if it exited 0.
absl::Status Run(const std::vector<std::string>& argv, int timeout_s, const std::string& log);

// The contents of a file (a result the program wrote), or an error.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// The last lines of a log, for an error message.
std::string Tail(const std::string& path, int lines);

// SIGINT/SIGTERM/SIGHUP to the driver kill the running program's group, then the driver.
void InstallSignalHandlers();

}  // namespace compare
