#include "cli/event_printer.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lib/core/resources.h"
#include "lib/process/proto_convert.h"

namespace constellation::cli {

using internal::FromProto;

void EventPrinter::Print(const v1::JobEvent& event) {
  switch (event.kind_case()) {
    case v1::JobEvent::kState:
      last_state_ = event.state();
      if (event.state().state() == v1::JOB_STATE_RUNNING) ran_ = true;
      break;
    case v1::JobEvent::kProcess:
      ran_ = true;
      PrintProcess(event.process());
      break;
    case v1::JobEvent::kTruncated:
      out_->Flush();
      fprintf(err_, "cdeploy: %s\n", DescribeTruncated(event.truncated()).c_str());
      fflush(err_);
      break;
    default:
      break;  // a kind this cdeploy does not know yet
  }
}

void EventPrinter::PrintProcess(const pb::ProcessEvent& e) {
  absl::StatusOr<Pid> pid = FromProto(e.pid());
  if (!pid.ok()) {
    ++skipped_;
    return;
  }
  if (e.has_spawn()) {
    absl::StatusOr<Pid> child = FromProto(e.spawn().child());
    if (!child.ok()) {
      ++skipped_;
      return;
    }
    out_->Spawn(*pid, *child);
  } else if (e.has_output()) {
    if (e.output().eof()) {
      out_->Eof(*pid, e.output().fd());
    } else {
      out_->Output(*pid, e.output().fd(), e.output().data());
    }
  } else if (e.has_exit()) {
    out_->Exit(*pid, e.exit());
  }
  out_->Flush();
}

std::string DescribeTruncated(const v1::Truncated& truncated) {
  std::string text = absl::StrCat(format_mem(truncated.dropped_bytes()), " of output were not kept");
  if (!truncated.why().empty()) absl::StrAppend(&text, ": ", truncated.why());
  return text;
}

bool IsFinished(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  if (name.empty()) return absl::StrCat("state ", static_cast<int>(state));
  absl::string_view short_name = name;
  absl::ConsumePrefix(&short_name, "JOB_STATE_");
  return absl::AsciiStrToLower(short_name);
}

Exit ExitOf(const std::string& job_id, const v1::StateChange& final, bool ran, int interrupted_by) {
  const std::string& reason = final.reason();
  switch (final.state()) {
    case v1::JOB_STATE_SUCCEEDED:
      return {final.exit_code(), ""};
    case v1::JOB_STATE_FAILED:
      if (!ran) {
        return {kCdeployError, absl::StrContains(reason, "cannot start")
                                   ? reason
                                   : absl::StrCat("cannot start the program: ",
                                                  reason.empty() ? "job " + job_id + " failed" : reason)};
      }
      return {final.exit_code(), ""};
    case v1::JOB_STATE_CANCELLED:
      if (interrupted_by != 0)
        return {128 + interrupted_by, absl::StrCat("interrupted; job ", job_id, " was cancelled")};
      // Cancelled by someone else: never a success.
      return {final.exit_code() != 0 ? final.exit_code() : kCdeployError,
              absl::StrCat("job ", job_id, " was cancelled", reason.empty() ? "" : ": " + reason)};
    default:
      return {kCdeployError, absl::StrCat("job ", job_id, " is still ", StateName(final.state()))};
  }
}

}  // namespace constellation::cli
