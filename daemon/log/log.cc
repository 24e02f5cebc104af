#include "daemon/log/log.h"

#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace constellation::daemon {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
std::atomic<bool> g_journal{false};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

const char* JournalPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return SD_DEBUG;
    case LogLevel::kInfo:
      return SD_INFO;
    case LogLevel::kWarning:
      return SD_WARNING;
    case LogLevel::kError:
      return SD_ERR;
  }
  return SD_ERR;
}

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
size_t Utf8Length(absl::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t code = n == 1 ? c : c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b >> 6) != 0x2) return 0;
    code = (code << 6) | (b & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kMin[n] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return n;
}

// JSON string contents: quotes, backslashes and control characters escaped,
// invalid UTF-8 bytes replaced by U+FFFD. `text_mode` escapes only what would
// break the line (control characters), for the human forms.
void AppendEscaped(std::string& out, absl::string_view s, bool json) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += json ? "\\t" : "\t";
    } else if (c < 0x20 || c == 0x7F) {
      absl::StrAppend(&out, "\\u", absl::Hex(c, absl::kZeroPad4));
    } else if (json && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x80 && json) {
      size_t n = Utf8Length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
        continue;
      }
      out.append(s.data() + i, n);
      i += n;
      continue;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
}

std::string Timestamp(absl::Time time) { return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone()); }

}  // namespace

bool AbslParseFlag(absl::string_view text, LogFormat* format, std::string* error) {
  if (text == "text") {
    *format = LogFormat::kText;
  } else if (text == "json") {
    *format = LogFormat::kJson;
  } else {
    *error = absl::StrCat("expected \"text\" or \"json\", got \"", text, "\"");
    return false;
  }
  return true;
}

std::string AbslUnparseFlag(LogFormat format) { return format == LogFormat::kJson ? "json" : "text"; }

bool StderrIsJournal() {
  const char* stream = getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(stream, ':');
  uint64_t dev = 0, ino = 0;
  if (!absl::SimpleAtoi(parts.first, &dev) || !absl::SimpleAtoi(parts.second, &ino)) return false;
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

void ConfigureLog(LogStyle style) {
  g_format.store(style.format);
  g_journal.store(style.journal);
}

std::string FormatLogLine(const LogStyle& style, absl::Time time, LogLevel level, absl::string_view component,
                          absl::string_view message) {
  std::string line;
  line.reserve(64 + message.size());
  if (style.format == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"time\":\"", Timestamp(time), "\",\"level\":\"", LevelName(level), "\",\"component\":\"");
    AppendEscaped(line, component, /*json=*/true);
    line += "\",\"message\":\"";
    AppendEscaped(line, message, /*json=*/true);
    line += "\"}\n";
    return line;
  }
  if (style.journal) {
    line += JournalPriority(level);
  } else {
    std::string name = LevelName(level);
    for (char& c : name) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
    absl::StrAppend(&line, Timestamp(time), " ", name, " ");
  }
  AppendEscaped(line, component, /*json=*/false);
  line += ": ";
  AppendEscaped(line, message, /*json=*/false);
  line += '\n';
  return line;
}

void Log(LogLevel level, absl::string_view component, absl::string_view message) {
  LogStyle style{g_format.load(), g_journal.load()};
  std::string line = FormatLogLine(style, absl::Now(), level, component, message);
  // One write per event: lines from several threads do not interleave.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log to
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace constellation::daemon
