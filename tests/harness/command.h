#pragma once

// Runs a short command to completion under Program's hang guard (its own
// process group, SIGKILLed and a test failure after `timeout`), stdin from an
// empty pipe, no CONSTELLATION* variables in its environment.

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace constellation::testing {

struct CommandResult {
  int code = -1;       // the shell's view: code, or 128 + signal; -1 if it could not run
  std::string output;  // stdout (or why it could not run)
  std::string error;   // stderr
};
// argv[0] is a path, or a name found on PATH.
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(30));

}  // namespace constellation::testing
