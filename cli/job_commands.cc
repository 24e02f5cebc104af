#include "cli/job_commands.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/event_printer.h"
#include "cli/listing.h"
#include "cli/run_command.h"
#include "lib/process/output_format.h"

namespace constellation::cli {

using internal::kVerboseEnv;
using internal::MakeHumanFormatter;
using internal::MakeJsonFormatter;
using internal::OutputFormat;
using internal::OutputFormatter;
using internal::VerboseFromEnv;

namespace {

int Fail(const absl::Status& status) { return cli::Fail(std::string(status.message())); }

bool Json(ListingFormat format, bool table_by_default) {
  switch (format) {
    case ListingFormat::kJson:
      return true;
    case ListingFormat::kTable:
      return false;
    case ListingFormat::kAuto:
      return !table_by_default && isatty(STDOUT_FILENO) != 1;
  }
  return false;
}

void Print(const std::string& text) { fwrite(text.data(), 1, text.size(), stdout); }

}  // namespace

int ListJobs(const Args& args, JobsClient& client) {
  v1::ListJobsRequest request;
  for (v1::JobState state : args.states) request.add_states(state);
  for (const auto& [key, value] : args.labels) (*request.mutable_labels())[key] = value;
  absl::StatusOr<std::vector<v1::Job>> jobs = client.List(request);
  if (!jobs.ok()) return Fail(jobs.status());
  if (Json(args.listing, /*table_by_default=*/true)) {
    for (const v1::Job& job : *jobs) Print(JsonLine(job));
  } else {
    Print(JobsTable(*jobs, absl::LocalTimeZone()));
  }
  return 0;
}

int JobStatus(const Args& args, JobsClient& client) {
  absl::StatusOr<v1::Job> job = client.Get(args.job);
  if (!job.ok()) return Fail(job.status());
  Print(Json(args.listing, true) ? JsonLine(*job) : JobDetails(*job, absl::LocalTimeZone()));
  return 0;
}

int JobLogs(const Args& args, JobsClient& client) {
  std::unique_ptr<OutputFormatter> out =
      args.output == OutputFormat::kJson
          ? MakeJsonFormatter(stdout)
          : MakeHumanFormatter(stdout, stderr, internal::UseColor(STDOUT_FILENO), VerboseFromEnv(getenv(kVerboseEnv)));
  EventPrinter printer(out.get(), stderr);
  absl::Status watched =
      client.Watch(args.job, args.from_seq, args.follow, [&](const v1::JobEvent& event) { printer.Print(event); });
  out->Flush();
  fflush(stdout);
  if (!watched.ok()) return Fail(watched);
  if (!args.follow) return 0;
  // Followed to the end: exit as the attached run would have.
  absl::StatusOr<v1::Job> job = client.Get(args.job);
  if (!job.ok()) return Fail(job.status());
  v1::StateChange final;
  final.set_state(job->state());
  final.set_reason(job->reason());
  final.set_exit_code(job->exit_code());
  Exit exit = ExitOf(args.job, final, printer.ran() || job->started_ms() != 0, 0);
  if (!exit.error.empty()) fprintf(stderr, "cdeploy: %s\n", exit.error.c_str());
  return exit.code;
}

int CancelJob(const Args& args, JobsClient& client) {
  absl::StatusOr<v1::Job> job = client.Cancel(args.job, args.grace);
  if (!job.ok()) return Fail(job.status());
  if (job->state() == v1::JOB_STATE_CANCELLED) {
    printf("job %s cancelled\n", job->id().c_str());
  } else if (IsFinished(job->state())) {
    printf("job %s had %s already\n", job->id().c_str(), StateName(job->state()).c_str());
  } else {
    printf("job %s is being cancelled (SIGKILL after %s)\n", job->id().c_str(),
           absl::FormatDuration(args.grace).c_str());
  }
  return 0;
}

int DeleteJob(const Args& args, JobsClient& client) {
  absl::Status deleted = client.Delete(args.job);
  if (!deleted.ok()) return Fail(deleted);
  printf("job %s deleted\n", args.job.c_str());
  return 0;
}

int ListNodes(const Args& args, JobsClient& client) {
  absl::StatusOr<std::vector<v1::NodeInfo>> nodes = client.ListNodes();
  if (!nodes.ok()) return Fail(nodes.status());
  if (Json(args.listing, /*table_by_default=*/false)) {
    for (const v1::NodeInfo& node : *nodes) Print(JsonLine(node));
  } else {
    Print(NodesTable(*nodes));
  }
  return 0;
}

}  // namespace constellation::cli
