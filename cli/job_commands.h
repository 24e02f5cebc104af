#pragma once

// The subcommands that work on jobs that exist already, and on the cluster:
//   list    the caller's jobs (an admin's: everyone's), filtered
//   status  one job, its processes
//   logs    its events from a seq, in local mode's output formats; -f
//           follows until it ends and exits with its exit code
//   cancel  SIGTERM to every process, SIGKILL after --grace
//   delete  a finished job and its log
//   nodes   the nodes with their capacity, free resources and processes
// Each returns cdeploy's exit code; errors are one line on stderr (exit 2).
// Output goes to stdout. Called from main's thread only.

#include "cli/args.h"
#include "cli/jobs_client.h"

namespace constellation::cli {

int ListJobs(const Args& args, JobsClient& client);
int JobStatus(const Args& args, JobsClient& client);
int JobLogs(const Args& args, JobsClient& client);
int CancelJob(const Args& args, JobsClient& client);
int DeleteJob(const Args& args, JobsClient& client);
int ListNodes(const Args& args, JobsClient& client);

}  // namespace constellation::cli
