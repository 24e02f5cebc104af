#include "tests/harness/cgroups.h"

#include "lib/process/cgroup.h"

namespace constellation::testing {

using internal::ReadCgroupLayout;
using internal::SweepStaleCgroupBases;

void RemoveStaleCgroups() { SweepStaleCgroupBases(ReadCgroupLayout()); }

}  // namespace constellation::testing
