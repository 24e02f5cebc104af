#include "daemon/log/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

const absl::Time kTime = absl::FromUnixMillis(1735787045678);  // 2025-01-02T03:04:05.678Z

TEST(Log, TextHasTimeLevelComponentAndMessage) {
  EXPECT_EQ(FormatLogLine({}, kTime, LogLevel::kInfo, "master", "node 10.0.0.2:9999 attached"),
            "2025-01-02T03:04:05.678Z INFO master: node 10.0.0.2:9999 attached\n");
  EXPECT_EQ(FormatLogLine({}, kTime, LogLevel::kError, "node", "x"), "2025-01-02T03:04:05.678Z ERROR node: x\n");
}

TEST(Log, JournalHasThePriorityAndNoTime) {
  LogStyle journal{LogFormat::kText, true};
  EXPECT_EQ(FormatLogLine(journal, kTime, LogLevel::kError, "node", "gone"), "<3>node: gone\n");
  EXPECT_EQ(FormatLogLine(journal, kTime, LogLevel::kWarning, "node", "w"), "<4>node: w\n");
  EXPECT_EQ(FormatLogLine(journal, kTime, LogLevel::kInfo, "node", "i"), "<6>node: i\n");
  EXPECT_EQ(FormatLogLine(journal, kTime, LogLevel::kDebug, "node", "d"), "<7>node: d\n");
}

TEST(Log, AMessageNeverSpansLines) {
  std::string line = FormatLogLine({}, kTime, LogLevel::kWarning, "node", "a\nb\rc\x1b");
  EXPECT_EQ(line, "2025-01-02T03:04:05.678Z WARNING node: a\\nb\\u000dc\\u001b\n");
}

TEST(Log, JsonIsOneEscapedObjectPerLine) {
  LogStyle json{LogFormat::kJson, false};
  EXPECT_EQ(FormatLogLine(json, kTime, LogLevel::kInfo, "master", "say \"hi\"\\ to\tn\xc3\xa9\n"),
            "{\"time\":\"2025-01-02T03:04:05.678Z\",\"level\":\"info\",\"component\":\"master\","
            "\"message\":\"say \\\"hi\\\"\\\\ to\\tn\xc3\xa9\\n\"}\n");
  // Invalid UTF-8 (a lone continuation byte, a truncated sequence, an overlong
  // form, a surrogate) becomes U+FFFD; JSON stays valid.
  EXPECT_EQ(FormatLogLine(json, kTime, LogLevel::kError, "n", "\x80|\xe2\x82|\xc0\xaf|\xed\xa0\x80"),
            "{\"time\":\"2025-01-02T03:04:05.678Z\",\"level\":\"error\",\"component\":\"n\","
            "\"message\":\"\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\"}\n");
  // The journal does not change JSON: shippers parse it either way.
  LogStyle json_journal{LogFormat::kJson, true};
  EXPECT_EQ(FormatLogLine(json_journal, kTime, LogLevel::kInfo, "m", "x"),
            FormatLogLine(json, kTime, LogLevel::kInfo, "m", "x"));
}

TEST(Log, FormatFlag) {
  LogFormat format;
  std::string error;
  EXPECT_TRUE(AbslParseFlag("json", &format, &error));
  EXPECT_EQ(format, LogFormat::kJson);
  EXPECT_TRUE(AbslParseFlag("text", &format, &error));
  EXPECT_EQ(format, LogFormat::kText);
  EXPECT_FALSE(AbslParseFlag("xml", &format, &error));
  EXPECT_EQ(error, "expected \"text\" or \"json\", got \"xml\"");
}

TEST(Log, JournalStreamMustNameStderr) {
  struct stat st;
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  setenv("JOURNAL_STREAM", absl::StrCat(st.st_dev, ":", st.st_ino).c_str(), 1);
  EXPECT_TRUE(StderrIsJournal());
  setenv("JOURNAL_STREAM", absl::StrCat(st.st_dev, ":", st.st_ino + 1).c_str(), 1);
  EXPECT_FALSE(StderrIsJournal()) << "stderr was redirected away from the journal";
  setenv("JOURNAL_STREAM", "junk", 1);
  EXPECT_FALSE(StderrIsJournal());
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(StderrIsJournal());
}

}  // namespace
}  // namespace constellation::daemon
