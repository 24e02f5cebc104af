#pragma once

// How a master learns what a deployment's root process asks for before
// placing it (as the seeds' bridge did): it runs the binary with
// CONSTELLATION_RESOURCES_QUERY=1, and init() prints its Resources and exits
// before doing anything else.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/core/resources.h"

namespace constellation::process_internal {

inline constexpr char kResourcesQueryEnv[] = "CONSTELLATION_RESOURCES_QUERY";

// In init(): "<mem bytes> <cpu>\n", the answer QueryResources() reads.
std::string FormatResourcesAnswer(const Resources& resources);

// Runs `path` with `argv` and `env` plus the query variable, stdin and
// stderr on /dev/null, and reads its answer. An error if it does not answer
// within `timeout` (it is then killed), exits otherwise, or prints anything
// else. `cgroup_procs`: cgroup.procs files the process joins before it
// execs, so none of the uploaded binary's code runs outside its limits (a
// node passes a small leaf's; empty: none). Thread-safe.
absl::StatusOr<Resources> QueryResources(const std::string& path, const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env, absl::Duration timeout,
                                         const std::vector<std::string>& cgroup_procs = {});

}  // namespace constellation::process_internal
