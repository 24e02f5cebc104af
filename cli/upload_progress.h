#pragma once

// How cdeploy shows an upload's progress on stderr: on a terminal, a bar
// redrawn in place; elsewhere (a CI log, a pipe, a file), lines such as
//
//   cdeploy: uploading 12.5 MiB of 40 MiB (31%)
//
// once the upload has taken 2 seconds (a quicker one says nothing), then
// whenever another 10% is done or 2 seconds have passed since the last line,
// and when it is complete.
//
// Not thread-safe: the uploading thread calls Update. `out` must outlive it.

#include <cstdint>
#include <cstdio>
#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace constellation::cli {

class UploadProgress {
 public:
  // `now` is the clock (tests pass their own).
  UploadProgress(FILE* out, bool terminal, std::function<absl::Time()> now = absl::Now);

  // `sent` of `total` bytes are uploaded. A `sent` below the last one is a
  // retried upload starting again.
  void Update(uint64_t sent, uint64_t total);

  static constexpr absl::Duration kLineInterval = absl::Seconds(2);
  static constexpr int kLineStepPercent = 10;

 private:
  void Bar(uint64_t sent, uint64_t total);
  void Line(uint64_t sent, uint64_t total);

  FILE* out_;
  bool terminal_;
  std::function<absl::Time()> now_;
  bool started_ = false;  // this attempt has begun: started_at_ is set
  bool printed_ = false;  // a line of this attempt is out
  absl::Time started_at_;
  bool done_ = false;
  uint64_t last_sent_ = 0;
  absl::Time last_line_;
  int last_step_ = -1;  // percent / kLineStepPercent of the last line
};

}  // namespace constellation::cli
