#include "cli/upload_progress.h"

#include <string>
#include <utility>

#include "lib/core/resources.h"

namespace constellation::cli {
namespace {

int Percent(uint64_t sent, uint64_t total) {
  if (total == 0 || sent >= total) return 100;
  return static_cast<int>(static_cast<unsigned __int128>(sent) * 100 / total);
}

}  // namespace

UploadProgress::UploadProgress(FILE* out, bool terminal, std::function<absl::Time()> now)
    : out_(out), terminal_(terminal), now_(std::move(now)) {}

void UploadProgress::Update(uint64_t sent, uint64_t total) {
  if (sent < last_sent_) {  // a retry
    done_ = false;
    started_ = false;
    printed_ = false;
    last_step_ = -1;
  }
  last_sent_ = sent;
  if (done_) return;
  if (terminal_) {
    Bar(sent, total);
  } else {
    Line(sent, total);
  }
  done_ = sent >= total;
}

void UploadProgress::Bar(uint64_t sent, uint64_t total) {
  constexpr int kWidth = 40;
  int percent = Percent(sent, total);
  int done = kWidth * percent / 100;
  fprintf(out_, "\r  uploading [%s%s] %3d%%", std::string(done, '#').c_str(), std::string(kWidth - done, ' ').c_str(),
          percent);
  if (sent >= total) fputs("\n", out_);
  fflush(out_);
}

void UploadProgress::Line(uint64_t sent, uint64_t total) {
  absl::Time now = now_();
  if (!started_) {
    started_ = true;
    started_at_ = now;
  }
  int percent = Percent(sent, total);
  int step = percent / kLineStepPercent;
  bool due = printed_ ? sent >= total || step > last_step_ || now - last_line_ >= kLineInterval
                      : now - started_at_ >= kLineInterval;
  if (!due) return;
  printed_ = true;
  last_line_ = now;
  last_step_ = step;
  fprintf(out_, "cdeploy: uploading %s of %s (%d%%)\n", format_mem(sent).c_str(), format_mem(total).c_str(), percent);
  fflush(out_);
}

}  // namespace constellation::cli
