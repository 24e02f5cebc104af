#include "cli/listing.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/event_printer.h"
#include "cli/table.h"
#include "google/protobuf/util/json_util.h"
#include "lib/core/resources.h"
#include "lib/process/output_format.h"
#include "lib/process/proto_convert.h"

namespace constellation::cli {

using internal::DescribeExit;
using internal::FromProto;

namespace {

std::string Labels(const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());  // the map's order is unspecified
  return absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

std::string Cpu(double cpu) { return absl::StrFormat("%g", cpu); }

// The 7-character name local mode shows, else the full text the master sent.
std::string ShortPid(const v1::JobProcess& p) {
  absl::StatusOr<Pid> pid = FromProto(p.pid());
  return pid.ok() ? pid->to_string() : p.pid_text();
}

std::string ProcessesTable(const v1::Job& job) {
  Table table({"PID", "NODE", "STATE", "EXIT", "MEM", "CPU"});
  for (const v1::JobProcess& p : job.processes()) {
    bool exited = p.state() == v1::PROCESS_STATE_EXITED;
    table.AddRow({ShortPid(p), p.node(), exited ? "exited" : "running", exited ? DescribeExit(p.exit()) : "",
                  format_mem(p.resources().mem()), Cpu(p.resources().cpu())});
  }
  return table.Render();
}

}  // namespace

std::string FormatMillis(int64_t unix_ms, absl::TimeZone tz) {
  if (unix_ms == 0) return "";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), tz);
}

std::string ExitColumn(const v1::Job& job) {
  if (!IsFinished(job.state())) return "";
  if (job.started_ms() == 0) return "-";
  return absl::StrCat(job.exit_code());
}

std::string JobsTable(const std::vector<v1::Job>& jobs, absl::TimeZone tz) {
  Table table({"JOB", "NAME", "STATE", "EXIT", "CREATED", "LABELS"},
              {Table::Align::kRight, Table::Align::kLeft, Table::Align::kLeft, Table::Align::kRight});
  for (const v1::Job& job : jobs) {
    table.AddRow({job.id(), job.spec().name(), StateName(job.state()), ExitColumn(job),
                  FormatMillis(job.created_ms(), tz), Labels(job.spec().labels())});
  }
  return table.Render();
}

std::string JobDetails(const v1::Job& job, absl::TimeZone tz) {
  std::string text;
  auto line = [&](absl::string_view key, const std::string& value) {
    if (!value.empty())
      absl::StrAppend(&text, absl::StrFormat("%-10s", absl::StrCat(key, ":")), Printable(value), "\n");
  };
  line("job", job.id());
  line("name", job.spec().name());
  std::string exit = ExitColumn(job);
  line("state", StateName(job.state()) + (exit.empty() || exit == "-" ? "" : " (exit code " + exit + ")"));
  line("reason", job.reason());
  line("owner", job.owner());
  line("labels", Labels(job.spec().labels()));
  line("argv", absl::StrJoin(job.spec().argv(), " "));
  line("created", FormatMillis(job.created_ms(), tz));
  line("started", FormatMillis(job.started_ms(), tz));
  line("finished", FormatMillis(job.finished_ms(), tz));
  line("events", absl::StrCat(job.last_seq()));
  if (job.processes_size() > 0) {
    text += "processes:\n";
    std::string table = ProcessesTable(job);
    for (absl::string_view row : absl::StrSplit(table, '\n', absl::SkipEmpty()))
      absl::StrAppend(&text, "  ", row, "\n");
  }
  return text;
}

std::string NodesTable(const std::vector<v1::NodeInfo>& nodes) {
  Table table({"NODE", "SOURCE", "STATE", "MEM", "CPU", "FREE MEM", "FREE CPU", "PROCESSES"},
              {Table::Align::kLeft, Table::Align::kLeft, Table::Align::kLeft, Table::Align::kRight,
               Table::Align::kRight, Table::Align::kRight, Table::Align::kRight, Table::Align::kRight});
  for (const v1::NodeInfo& node : nodes) {
    // SOURCE: nodes.toml ("config") or --join ("joined"); an older master says nothing.
    table.AddRow({node.addr(), node.source().empty() ? "config" : node.source(), node.state(),
                  format_mem(node.capacity().mem()), Cpu(node.capacity().cpu()), format_mem(node.free().mem()),
                  Cpu(node.free().cpu()), absl::StrCat(node.processes())});
  }
  return table.Render();
}

std::string JsonLine(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return "{}\n";  // only for messages with fields JSON cannot hold, which ours have not
  }
  return json + "\n";
}

}  // namespace constellation::cli
