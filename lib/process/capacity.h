#pragma once

// Local mode's capacity: what the machine, seen as a one-node cluster, offers
// to the processes of one program. CONSTELLATION_CAPACITY="8 GiB,4" overrides
// the machine's own figures.

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/core/resources.h"

namespace constellation::internal {

inline constexpr char kCapacityEnv[] = "CONSTELLATION_CAPACITY";

// Parses "<mem>,<cpu>", e.g. "8 GiB,4" or "512 MiB, 0.5" (parse_mem and
// parse_cpu's syntax). Errors name the variable and say what was wrong.
absl::StatusOr<Resources> ParseCapacity(absl::string_view text);

// The machine's memory (physical, or this process's memory cgroup limit if
// lower) and the number of CPUs this process may run on.
Resources MachineCapacity();

// ParseCapacity(env) when `env` is set and not empty, else MachineCapacity().
absl::StatusOr<Resources> LocalCapacity(const char* env);

}  // namespace constellation::internal
