#pragma once

// How cdeploy shows an upload's progress on stderr: on a terminal, a bar
// redrawn in place; elsewhere (a CI log, a pipe, a file), a line now and then,
// when another 10% is done or 2 seconds have passed since the last line, and
// when the upload is complete:
//
//   cdeploy: uploading 12.5 MiB of 40 MiB (31%)
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
  bool started_ = false;
  bool done_ = false;
  uint64_t last_sent_ = 0;
  absl::Time last_line_;
  int last_step_ = -1;  // percent / kLineStepPercent of the last line
};

}  // namespace constellation::cli
