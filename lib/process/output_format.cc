#include "lib/process/output_format.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/core/resources.h"

namespace constellation::internal {
namespace {

constexpr absl::string_view kIndent = "   ";

// A JSON string's contents: quotes, backslashes and control characters escaped.
std::string JsonEscape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, absl::StrFormat("\\u%04x", c));
    } else {
      out += c;
    }
  }
  return out;
}

// Prints a header line whenever the speaking process changes, and indents
// every line of output under it. A process's unfinished line is ended before
// another process speaks. When stdout and stderr go to different places each
// gets its own headers; when they are one terminal or file, one set serves both.
class HumanFormatter : public OutputFormatter {
 public:
  HumanFormatter(FILE* out, FILE* err, bool color, bool verbose)
      : streams_{Stream{out}, Stream{err}}, shared_(SameTarget(out, err)), color_(color), verbose_(verbose) {}

  void Spawn(const Pid& parent, const Pid& child) override { Line(parent, absl::StrCat("spawned: ", Name(child))); }

  void Output(const Pid& pid, int fd, absl::string_view data) override {
    Stream& stream = streams_[fd == 2 ? 1 : 0];
    Speak(pid, stream);
    for (char c : data) {
      if (stream.at_line_start) fputs(kIndent.data(), stream.file);
      fputc(c, stream.file);
      stream.at_line_start = c == '\n';
    }
  }

  void Eof(const Pid&, int) override {}

  void Exit(const Pid& pid, const pb::ExitEvent& exit) override { Line(pid, DescribeExit(exit, verbose_)); }

  void Flush() override {
    fflush(streams_[0].file);
    fflush(streams_[1].file);
  }

 private:
  struct Stream {
    FILE* file;
    bool at_line_start = true;
    bool has_speaker = false;
    Pid speaker;
  };

  static bool SameTarget(FILE* a, FILE* b) {
    struct stat sa, sb;
    return fileno(a) >= 0 && fileno(b) >= 0 && fstat(fileno(a), &sa) == 0 && fstat(fileno(b), &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  }

  // A line of the bridge's own (spawned:, exited) under pid's header, on stdout.
  void Line(const Pid& pid, absl::string_view text) {
    Stream& stream = streams_[0];
    Speak(pid, stream);
    EndLine(stream);
    fprintf(stream.file, "%s%.*s\n", kIndent.data(), static_cast<int>(text.size()), text.data());
  }

  void Speak(const Pid& pid, Stream& stream) {
    Stream& other = &stream == &streams_[0] ? streams_[1] : streams_[0];
    if (&stream != last_stream_) fflush(other.file);  // one terminal: keep the order of lines
    last_stream_ = &stream;
    if (stream.has_speaker && stream.speaker == pid) return;
    EndLine(stream);
    if (shared_) EndLine(other);
    fprintf(stream.file, "%s:\n", Name(pid).c_str());
    for (Stream* s : {&stream, shared_ ? &other : nullptr}) {
      if (s == nullptr) continue;
      s->has_speaker = true;
      s->speaker = pid;
    }
  }

  static void EndLine(Stream& stream) {
    if (stream.at_line_start) return;
    fputc('\n', stream.file);
    stream.at_line_start = true;
  }

  std::string Name(const Pid& pid) const {
    if (!color_) return pid.to_string();
    // One of six bright colours, chosen by the pid so it stays the same.
    int colour = 31 + static_cast<int>(std::hash<Pid>()(pid) % 6);
    return absl::StrCat("\x1b[1;", colour, "m", pid.to_string(), "\x1b[0m");
  }

  Stream streams_[2];
  bool shared_;
  bool color_;
  bool verbose_;
  Stream* last_stream_ = nullptr;
};

class JsonFormatter : public OutputFormatter {
 public:
  explicit JsonFormatter(FILE* out) : out_(out) {}

  void Spawn(const Pid& parent, const Pid& child) override {
    fprintf(out_, "{\"event\":\"spawn\",\"pid\":\"%s\",\"child\":\"%s\"}\n", parent.to_string().c_str(),
            child.to_string().c_str());
  }

  void Output(const Pid& pid, int fd, absl::string_view data) override {
    fprintf(out_, "{\"event\":\"output\",\"pid\":\"%s\",\"fd\":%d,\"data\":\"%s\"}\n", pid.to_string().c_str(), fd,
            absl::Base64Escape(data).c_str());
  }

  void Eof(const Pid& pid, int fd) override {
    fprintf(out_, "{\"event\":\"output\",\"pid\":\"%s\",\"fd\":%d,\"eof\":true}\n", pid.to_string().c_str(), fd);
  }

  void Exit(const Pid& pid, const pb::ExitEvent& exit) override {
    std::string line = absl::StrCat("{\"event\":\"exit\",\"pid\":\"", pid.to_string(), "\"");
    if (exit.status_case() == pb::ExitEvent::kSignal) {
      absl::StrAppend(&line, ",\"signal\":\"", SignalName(exit.signal()), "\"");
    } else {
      absl::StrAppend(&line, ",\"code\":", exit.code());
    }
    if (exit.memory_exceeded()) absl::StrAppend(&line, ",\"memory_exceeded\":true");
    if (!exit.error().empty()) absl::StrAppend(&line, ",\"error\":\"", JsonEscape(exit.error()), "\"");
    if (exit.peak_mem() > 0 || exit.cpu_time_us() > 0) {
      absl::StrAppend(&line, ",\"peak_mem\":", exit.peak_mem(),
                      absl::StrFormat(",\"cpu_time\":%.6f", exit.cpu_time_us() / 1e6));
    }
    fprintf(out_, "%s}\n", line.c_str());
  }

  void Flush() override { fflush(out_); }

 private:
  FILE* out_;
};

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(const char* value) {
  if (value == nullptr || *value == '\0' || std::strcmp(value, "human") == 0) return OutputFormat::kHuman;
  if (std::strcmp(value, "json") == 0) return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("CONSTELLATION_FORMAT=", value, " is not a format: use \"human\" (the default) or \"json\""));
}

bool VerboseFromEnv(const char* value) { return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0; }

bool ColorFor(bool terminal, const char* no_color) { return terminal && (no_color == nullptr || *no_color == '\0'); }

bool UseColor(int fd) { return ColorFor(isatty(fd) == 1, getenv("NO_COLOR")); }

std::unique_ptr<OutputFormatter> MakeHumanFormatter(FILE* out, FILE* err, bool color, bool verbose) {
  return std::make_unique<HumanFormatter>(out, err, color, verbose);
}

std::unique_ptr<OutputFormatter> MakeJsonFormatter(FILE* out) { return std::make_unique<JsonFormatter>(out); }

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  if (abbrev == nullptr) return absl::StrCat("SIG", signal);
  return absl::StrCat("SIG", abbrev);
}

std::string DescribeExit(const pb::ExitEvent& exit, bool verbose) {
  std::string text;
  if (exit.memory_exceeded()) {
    text = absl::StrCat("killed: ", exit.error());
  } else if (exit.status_case() == pb::ExitEvent::kSignal) {
    text = absl::StrCat("exited: ", SignalName(exit.signal()));
  } else {
    text = exit.code() == 0 ? "exited" : absl::StrCat("exited: ", exit.code());
  }
  if (!exit.error().empty() && !exit.memory_exceeded()) absl::StrAppend(&text, " (", exit.error(), ")");
  if (verbose && (exit.peak_mem() > 0 || exit.cpu_time_us() > 0)) {
    absl::StrAppend(
        &text, absl::StrFormat(" [peak memory %s, cpu %.3f s]", format_mem(exit.peak_mem()), exit.cpu_time_us() / 1e6));
  }
  return text;
}

int ExitCodeOf(const pb::ExitEvent& exit) {
  if (exit.status_case() == pb::ExitEvent::kSignal) return 128 + exit.signal();
  return exit.code();
}

}  // namespace constellation::internal
