#pragma once
// The daemon's log: one line per event on stderr, with a level, a component
// ("node", "master", ...) and, unless journald adds it, the time.
//
//   LogInfo("master", "node %s attached", address);
//
// Three forms, chosen once at start-up by ConfigureLog():
//   text:     2025-01-02T03:04:05.678Z INFO master: node 10.0.0.2:9999 attached
//   journal:  <6>master: node 10.0.0.2:9999 attached
//             (stderr is the journal: $JOURNAL_STREAM names stderr's device and
//             inode; the <N> prefix is the syslog priority, sd-daemon.h's SD_INFO
//             etc., and journald stamps the time itself)
//   json:     {"time":"2025-01-02T03:04:05.678Z","level":"info","component":"master","message":"..."}
//             (--log-format=json, for log shippers; strings escaped, invalid
//             UTF-8 replaced)
// A message never spans lines: newlines and other control characters in it are
// escaped, so a hostile file name cannot forge a second event.
//
// Threading: ConfigureLog() before any thread logs; Log() and the helpers from
// any thread (each event is one write(2)).
#include <string>
#include "absl/strings/string_view.h"

#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace constellation::daemon {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// For --log-format: "text" or "json".
bool AbslParseFlag(absl::string_view text, LogFormat* format, std::string* error);
std::string AbslUnparseFlag(LogFormat format);

struct LogStyle {
  LogFormat format = LogFormat::kText;
  bool journal = false;  // text with the <N> priority prefix and no time
};

// True if $JOURNAL_STREAM names the file stderr is (systemd's documented test).
bool StderrIsJournal();

// Sets the style of every later event. Call before other threads start.
void ConfigureLog(LogStyle style);

// The line (with its '\n') an event is written as; pure, for tests.
std::string FormatLogLine(const LogStyle& style, absl::Time time, LogLevel level, absl::string_view component,
                          absl::string_view message);

// Writes one event to stderr.
void Log(LogLevel level, absl::string_view component, absl::string_view message);

template <typename... Args>
void LogDebug(absl::string_view component, const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogLevel::kDebug, component, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogInfo(absl::string_view component, const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogLevel::kInfo, component, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogWarning(absl::string_view component, const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogLevel::kWarning, component, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogError(absl::string_view component, const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogLevel::kError, component, absl::StrFormat(format, args...));
}

}  // namespace constellation::daemon
