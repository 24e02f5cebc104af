#pragma once

// The zygote's signal dispositions (lib/process/zygote.h): the zygote keeps
// terminal signals and the program's handlers away from itself, and gives
// its children the program's dispositions of init() time back, as an exec
// would. Process-wide state, saved by EnterZygoteSignals in the zygote and
// inherited by every fork of it.
//
// Threading: single-threaded processes only (the zygote and its children
// before they start threads).

namespace constellation::process_internal {

// In the zygote: terminal signals (SIGINT, SIGHUP, SIGQUIT) are ignored (its
// launcher handles those and closes the zygote's socket), the program's
// handlers are set to the default, and children are reaped by the kernel.
// What it changes is saved for RestoreProgramSignals.
void EnterZygoteSignals();

// In a child of the zygote (a spare's monitor and user process too): the
// program's signal dispositions of init() time and an empty mask, as after
// an exec, with SIGCHLD never ignored (its monitor waits for its own child).
// A spare keeps the zygote's until its spawn comes, so that a terminal's
// Ctrl-C or the program's handlers never reach a process that has not
// started.
void RestoreProgramSignals();

// In a spare, until then: SIGCHLD at its default (the monitor waits for its
// child), the rest as the zygote has them.
void EnterSpareSignals();

}  // namespace constellation::process_internal
