#include "cli/resume.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace constellation::cli {

bool IsRetryable(const absl::Status& status, bool streaming) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return true;
    // A stream cut by a dying server can end with these instead (a reset
    // HTTP/2 stream, a half-written frame).
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kAborted:
      return streaming;
    default:
      return false;
  }
}

void Retry::Progress() {
  failing_since_.reset();
  next_wait_ = kFirstWait;
}

absl::StatusOr<absl::Duration> Retry::Failed(absl::Time now, const absl::Status& status, bool streaming) {
  if (!IsRetryable(status, streaming)) return status;
  if (!failing_since_.has_value()) failing_since_ = now;
  absl::Duration left = *failing_since_ + budget_ - now;
  if (left <= absl::ZeroDuration()) {
    return absl::UnavailableError(
        absl::StrCat(status.message(), "; no answer for ", absl::FormatDuration(budget_), " (--reconnect-timeout)"));
  }
  absl::Duration wait = std::min(next_wait_, left);
  next_wait_ = std::min(next_wait_ * 2, kLongestWait);
  return wait;
}

bool WatchCursor::Accept(const v1::JobEvent& event) {
  if (event.seq() <= last_seq_) return false;
  if (event.seq() != last_seq_ + 1) ++gaps_;
  last_seq_ = event.seq();
  return true;
}

}  // namespace constellation::cli
