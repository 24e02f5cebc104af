#pragma once

// The process-wide state init() sets up (lib/process/runtime.h), for the
// library's own code: spawn() and the data plane build on it. Internal; never
// included by a public header (it brings in the generated protos).
//
// Threading: init() writes it before any thread starts; afterwards it is
// immutable and any thread may read it.

#include <string>
#include <vector>

#include "lib/core/internal_only.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "proto/local.pb.h"

namespace constellation::process_internal {

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

// Aborts with a message naming `api` if init() has not run.
void RequireInit(const char* api);

// The state init() set up. RequireInit() first. Immutable after init().
const Runtime& runtime();

// For init() alone (runtime.cc): the state it fills in, then marks ready
// (with release order, so a thread that sees Initialized() sees the state).
Runtime& MutableRuntime();
void MarkInitialized();
bool Initialized();

}  // namespace constellation::process_internal
