#include "tests/harness/cgroups.h"

#include "lib/process/cgroup.h"

namespace constellation::testing {

void RemoveStaleCgroups() { SweepStaleCgroupBases(ReadCgroupLayout()); }

}  // namespace constellation::testing
