#pragma once

// Running tests/resources/resource_programs under the local bridge, and
// looking at the cgroup hierarchies the runs use (cgroup v1 memory and cpu,
// as on the machines this suite runs on).

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/harness/program.h"
#include "tests/harness/run.h"

namespace constellation::testing {

// Runs the program `args[0]` to the end with extra environment variables,
// with the harness's checks (JSON trace invariants, exit-code rule, nothing
// of the process group left).
// `bridge` receives the bridge's OS pid (the started process).
RunResult RunResourceProgram(std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env = {},
                             std::optional<std::string> format = "json", pid_t* bridge = nullptr);

// The cgroup v1 directories this test process is in, for memory and cpu
// ("" when the hierarchy is not mounted).
std::string OwnMemoryCgroup();
std::string OwnCpuCgroup();

// Why the enforcement tests cannot run here ("" when they can): they need
// root and writable cgroup v1 memory and cpu hierarchies.
std::string CgroupsUnavailable();

// Names of "constellation-<os pid>" bases under `dir`, and which of them
// belong to processes that are no longer running.
std::vector<std::string> Bases(const std::string& dir);
std::vector<std::string> StaleBases(const std::string& dir);

// Waits (up to `seconds`) until `dir`/constellation-<bridge> is gone;
// true if it went.
bool WaitBaseGone(const std::string& dir, pid_t bridge, int seconds);

}  // namespace constellation::testing
