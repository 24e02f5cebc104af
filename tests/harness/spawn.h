#pragma once

// Starting processes for the integration tests: where a program is (in the
// test's runfiles or on PATH), the environment a program under test gets, and
// posix_spawn into a process group of its own so that the test can kill all
// of it. The caller owns (and must reap) the process it gets back.

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace constellation::testing {

// "what: <strerror(errno)>".
std::string ErrnoText(const char* what);
// The last `max` bytes of `text`, marked with "..." if cut.
std::string Tail(const std::string& text, size_t max = 4000);

// A program in this test's runfiles ("daemon/constellation"); fails the test
// (ADD_FAILURE) if it is not there or not executable.
std::string RunfilePath(const std::string& relative);
// Where a program is: itself if it has a '/', else the first match on PATH
// (then /usr/sbin, /sbin, /usr/bin, /bin); `name` if none.
std::string FindProgram(const std::string& name);

// The test's environment without any CONSTELLATION* variable (a program under
// test must not inherit the runtime's own), plus `extra` ("KEY", "value").
std::vector<std::string> CleanEnvironment(const std::vector<std::pair<std::string, std::string>>& extra);

// posix_spawn of argv (argv[0] through FindProgram) in a new process group,
// with no signal blocked and the usual ones back to their defaults. Its stdin
// is `stdin_fd` (/dev/null if -1), its stdout and stderr `out_fd` and
// `err_fd`. `env` is the whole environment (the test's own if nullptr).
absl::StatusOr<pid_t> SpawnInGroup(const std::vector<std::string>& argv, const std::vector<std::string>* env,
                                   int stdin_fd, int out_fd, int err_fd);

// pidfd_open(2): a descriptor that polls readable once `pid` exits; -1 on error.
int PidfdOpen(pid_t pid);

}  // namespace constellation::testing
