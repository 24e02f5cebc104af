#pragma once

// compare_scale's --scale=connections row (scale_connections.cc): the memory
// an idle connection costs at each end, in real processes.

#include <cstdint>

#include "bench/compare/common.h"

namespace compare {

// Forks n processes (call it before any thread starts), opens a channel pair
// to each, and writes the hub's and the other ends' memory growth to args.out.
void Connections(const Args& args, int64_t n);

}  // namespace compare
