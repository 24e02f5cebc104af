#pragma once

// Tests clean up the cgroups they cause, also when they SIGKILL a whole
// process group (monitors included, so nobody is left to remove them).

namespace constellation::testing {

// Removes the cgroup bases of Constellation launchers (bridges, node daemons)
// that no longer run, under this test process's own cgroups.
void RemoveStaleCgroups();

}  // namespace constellation::testing
