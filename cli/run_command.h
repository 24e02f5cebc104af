#pragma once

// `cdeploy [ADDR] BINARY [-- args]` and `cdeploy submit`: uploads the binary
// unless the master has it, submits a job, and then either prints its id
// (--detach) or stays attached: prints its events as local mode prints a
// program, forwards stdin to the root process, cancels the job on Ctrl-C or
// SIGTERM (a second one leaves at once), reconnects to a restarted master
// from the last event printed, and exits with the job's exit code.
//
// Attached, the caller has blocked SIGINT and SIGTERM in every thread (before
// any thread started: gRPC's too); the run waits for them on a thread of its
// own. Detached, they keep their default action.

#include <string>

#include "cli/args.h"
#include "cli/event_printer.h"
#include "cli/jobs_client.h"

namespace constellation::cli {

// Prints "cdeploy: <message>" on stderr; returns kCdeployError.
int Fail(const std::string& message);

// `binary` is the executable to upload (a label already built), `ref` what
// JobsClient::Describe() said of it. Returns the exit code, or does not return
// (attached: it leaves with _exit once the job has ended, since the stdin
// thread may be blocked in read()).
int RunOrSubmit(const Args& args, JobsClient& client, const std::string& binary, const v1::BinaryRef& ref);

}  // namespace constellation::cli
