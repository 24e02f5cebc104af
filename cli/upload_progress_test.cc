#include "cli/upload_progress.h"

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/core/resources.h"

namespace constellation::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Collects what UploadProgress writes; the clock is ours.
class Capture {
 public:
  Capture() : out_(open_memstream(&buf_, &size_)) {}
  ~Capture() {
    fclose(out_);
    free(buf_);
  }
  FILE* out() { return out_; }
  std::string text() {
    fflush(out_);
    return std::string(buf_, size_);
  }
  std::vector<std::string> lines() {
    std::vector<std::string> lines;
    std::string all = text();
    for (size_t start = 0, end; (end = all.find('\n', start)) != std::string::npos; start = end + 1) {
      lines.push_back(all.substr(start, end - start));
    }
    return lines;
  }

  absl::Time now = absl::UnixEpoch();

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  FILE* out_;
};

// Off a terminal, one MiB a second for 100 s: nothing for 2 s, then a line
// every 2 s or 10%, and the last.
TEST(UploadProgress, NotATerminalPrintsLinesOnceItTakesTwoSeconds) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/false, [&c] { return c.now; });
  uint64_t total = 100 * kMiB;
  for (uint64_t sent = kMiB; sent <= total; sent += kMiB) {
    progress.Update(sent, total);
    c.now += absl::Seconds(1);
  }
  std::vector<std::string> lines = c.lines();
  // At 3, 5, 7, 9 MiB (2 s apart), 10 (10%), then 12, 14, ... 100 (every
  // 2 s, which meets the tens).
  ASSERT_EQ(lines.size(), 50u) << c.text();
  EXPECT_EQ(lines[0], "cdeploy: uploading 3 MiB of 100 MiB (3%)");
  EXPECT_EQ(lines[1], "cdeploy: uploading 5 MiB of 100 MiB (5%)");
  EXPECT_EQ(lines[4], "cdeploy: uploading 10 MiB of 100 MiB (10%)");
  EXPECT_EQ(lines[5], "cdeploy: uploading 12 MiB of 100 MiB (12%)");
  EXPECT_EQ(lines[48], "cdeploy: uploading 98 MiB of 100 MiB (98%)");
  EXPECT_EQ(lines[49], "cdeploy: uploading 100 MiB of 100 MiB (100%)");
  EXPECT_EQ(c.text().find('\r'), std::string::npos);
}

TEST(UploadProgress, NotATerminalPrintsALineEveryTenPercent) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/false, [&c] { return c.now; });
  uint64_t total = 100 * kMiB;
  progress.Update(kMiB, total);
  c.now += absl::Seconds(2);
  progress.Update(2 * kMiB, total);                                                          // 2 s: the first line
  for (uint64_t sent = 3 * kMiB; sent <= total; sent += kMiB) progress.Update(sent, total);  // no time passes
  EXPECT_THAT(c.lines(),
              ElementsAre("cdeploy: uploading 2 MiB of 100 MiB (2%)", "cdeploy: uploading 10 MiB of 100 MiB (10%)",
                          "cdeploy: uploading 20 MiB of 100 MiB (20%)", "cdeploy: uploading 30 MiB of 100 MiB (30%)",
                          "cdeploy: uploading 40 MiB of 100 MiB (40%)", "cdeploy: uploading 50 MiB of 100 MiB (50%)",
                          "cdeploy: uploading 60 MiB of 100 MiB (60%)", "cdeploy: uploading 70 MiB of 100 MiB (70%)",
                          "cdeploy: uploading 80 MiB of 100 MiB (80%)", "cdeploy: uploading 90 MiB of 100 MiB (90%)",
                          "cdeploy: uploading 100 MiB of 100 MiB (100%)"));
}

TEST(UploadProgress, NotATerminalAQuickUploadSaysNothing) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/false, [&c] { return c.now; });
  for (uint64_t sent = kMiB; sent <= 10 * kMiB; sent += kMiB) {
    progress.Update(sent, 10 * kMiB);
    c.now += absl::Milliseconds(199);
  }
  progress.Update(0, 0);  // an empty binary: complete at once
  EXPECT_EQ(c.text(), "");
}

TEST(UploadProgress, ARetryStartsAgain) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/false, [&c] { return c.now; });
  progress.Update(1, 10);
  c.now += absl::Seconds(3);
  progress.Update(10, 10);  // a line: 3 s in
  progress.Update(1, 10);   // a retry: quiet again for 2 s
  progress.Update(5, 10);
  c.now += absl::Seconds(2);
  progress.Update(10, 10);
  EXPECT_THAT(c.lines(),
              ElementsAre("cdeploy: uploading 10 B of 10 B (100%)", "cdeploy: uploading 10 B of 10 B (100%)"));
}

TEST(UploadProgress, ATerminalGetsABarRedrawnInPlace) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/true, [&c] { return c.now; });
  progress.Update(50, 100);
  progress.Update(100, 100);
  std::string text = c.text();
  EXPECT_THAT(text, HasSubstr("\r  uploading [" + std::string(20, '#') + std::string(20, ' ') + "]  50%"));
  EXPECT_THAT(text, HasSubstr("\r  uploading [" + std::string(40, '#') + "] 100%\n"));
  EXPECT_EQ(text.find("cdeploy:"), std::string::npos);
}

}  // namespace
}  // namespace constellation::cli
