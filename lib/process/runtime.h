#pragma once

// The process model's entry points: init(), pid(), resources(). The state
// they set up, which spawn() and the data plane build on, is internal
// (lib/process/runtime_state.h).

#include "lib/core/pid.h"
#include "lib/core/resources.h"

namespace constellation {

// The first statement of main(). In the top process it forks the bridge (the
// original process becomes the bridge and never returns from init(); the
// child carries on as the program). In every process it forks the monitor
// and returns in the user program. In a spawned process it runs the spawned
// function and exits, never returning. Aborts with a message if called
// twice or after threads were started.
void init(Resources resources = Resources());

// This process's Pid and the resources it was given. Abort before init().
Pid pid();
Resources resources();

}  // namespace constellation
