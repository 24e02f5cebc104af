#pragma once

// What `cdeploy list`, `status` and `nodes` print: tables and key/value text
// for people, or one JSON object a line (the proto3 JSON mapping of Job and
// NodeInfo with the .proto's field names, every field present) for programs.
// Plain functions; `tz` is where times are shown (tests pass UTC).

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "proto/jobs.pb.h"

namespace constellation::cli {

// JOB NAME STATE EXIT CREATED LABELS, one row per job.
std::string JobsTable(const std::vector<v1::Job>& jobs, absl::TimeZone tz);

// "job:" "state:" ... lines and a table of the job's processes.
std::string JobDetails(const v1::Job& job, absl::TimeZone tz);

// NODE STATE MEM CPU FREE-MEM FREE-CPU PROCESSES, one row per node.
std::string NodesTable(const std::vector<v1::NodeInfo>& nodes);

// `message` as one line of JSON, ending in '\n'.
std::string JsonLine(const google::protobuf::Message& message);

// "2024-05-02 13:04:05" for Unix milliseconds; "" for 0 (not yet).
std::string FormatMillis(int64_t unix_ms, absl::TimeZone tz);

// "3" for a job that ran and finished with exit code 3; "-" for one that
// finished without running; "" while it runs.
std::string ExitColumn(const v1::Job& job);

}  // namespace constellation::cli
