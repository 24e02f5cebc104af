#pragma once

// Reading /proc for the integration tests: a process's state, parent, process
// group and start time, and the members of a process group. Nothing here
// touches a process; every function may be called from any thread.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace constellation::testing {

// The fields of /proc/<pid>/stat after the command name, split on spaces:
// [0] state, [1] ppid, [2] pgrp, ..., [19] starttime. Empty if `pid` is gone.
std::vector<std::string> StatFields(pid_t pid);

// Every pid in /proc.
std::vector<pid_t> AllPids();

enum class Zombies { kInclude, kExclude };
// OS pids in process group `pgid` other than `except`; zombies (and dead
// processes) counted or not.
std::vector<pid_t> GroupMembers(pid_t pgid, pid_t except, Zombies zombies);

// The state letter of `pid` from /proc/<pid>/stat ('\0' if it is gone; 'Z' for
// a zombie).
char ProcessState(pid_t pid);
// The start time (clock ticks since boot) of `pid`, 0 if it is gone; to tell a
// reused pid from the original.
uint64_t ProcessStartTime(pid_t pid);
// True if `pid` is a descendant of `ancestor` (walks the ppids).
bool IsDescendantOf(pid_t pid, pid_t ancestor);

}  // namespace constellation::testing
