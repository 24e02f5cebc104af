#pragma once

// The process model's entry points: init(), pid(), resources(), and the
// process-wide state spawn() and the data plane build on.

#include <string>
#include <vector>

#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "proto/local.pb.h"

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

namespace process_internal {

// Aborts with a message naming `api` if init() has not run.
void RequireInit(const char* api);

struct Runtime {
  Pid self;
  Pid parent;  // null in the root process
  Resources resources;
  // Events for the bridge (spawn) go through the monitor, which first forwards
  // what the process already wrote, so output before spawn() precedes its line.
  int monitor_fd = -1;
  std::string bridge_name;        // where spawned processes connect
  std::vector<std::string> argv;  // what spawn() re-executes with
  bool fabric = false;            // cluster mode: spawn() asks the master
  pb::CgroupBase cgroups;         // the launcher's, where each monitor makes its process's cgroup
  std::string secret;             // the deployment's data-plane secret (lib/net/handshake.h)
};

// The state init() set up. RequireInit() first. Immutable after init().
const Runtime& runtime();

}  // namespace process_internal
}  // namespace constellation
