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

TEST(UploadProgress, NotATerminalPrintsALineEveryTenPercent) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/false, [&c] { return c.now; });
  uint64_t total = 100 * kMiB;
  for (uint64_t sent = kMiB; sent <= total; sent += kMiB) progress.Update(sent, total);
  std::vector<std::string> lines = c.lines();
  // The first chunk, then 10%, 20%, ..., 100%.
  ASSERT_EQ(lines.size(), 11u) << c.text();
  EXPECT_EQ(lines[0], "cdeploy: uploading 1 MiB of 100 MiB (1%)");
  EXPECT_EQ(lines[1], "cdeploy: uploading 10 MiB of 100 MiB (10%)");
  EXPECT_EQ(lines[10], "cdeploy: uploading 100 MiB of 100 MiB (100%)");
  EXPECT_EQ(c.text().find('\r'), std::string::npos);
}

TEST(UploadProgress, NotATerminalPrintsALineEveryTwoSeconds) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/false, [&c] { return c.now; });
  uint64_t total = 1000 * kMiB;
  progress.Update(kMiB, total);  // 0%: the first line
  c.now += absl::Seconds(1);
  progress.Update(2 * kMiB, total);  // nothing: 1 s, same 10%
  c.now += absl::Seconds(1);
  progress.Update(3 * kMiB, total);  // 2 s since the last line
  c.now += absl::Milliseconds(1999);
  progress.Update(4 * kMiB, total);  // nothing
  progress.Update(total, total);     // complete: always
  progress.Update(total, total);     // nothing more
  EXPECT_THAT(c.lines(),
              ElementsAre("cdeploy: uploading 1 MiB of 1000 MiB (0%)", "cdeploy: uploading 3 MiB of 1000 MiB (0%)",
                          "cdeploy: uploading 1000 MiB of 1000 MiB (100%)"));
}

TEST(UploadProgress, ARetryStartsAgain) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/false, [&c] { return c.now; });
  progress.Update(10, 10);
  progress.Update(5, 10);
  progress.Update(10, 10);
  EXPECT_EQ(c.lines().size(), 3u) << c.text();
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

TEST(UploadProgress, AnEmptyBinaryIsComplete) {
  Capture c;
  UploadProgress progress(c.out(), /*terminal=*/false, [&c] { return c.now; });
  progress.Update(0, 0);
  EXPECT_THAT(c.lines(), ElementsAre("cdeploy: uploading 0 B of 0 B (100%)"));
}

}  // namespace
}  // namespace constellation::cli
