#pragma once

// A harness for the local-mode integration tests: runs a built test program
// (tests/local/scenarios.cc) as a subprocess under its own process group,
// with CONSTELLATION_FORMAT=json by default, feeds its stdin, reads its
// stdout incrementally, enforces a hard timeout (the whole process group is
// SIGKILLed and the test fails, never hangs), and parses the bridge's JSON
// events into a process tree whose invariants it checks.
//
// The harness reaps only the one process it started (the bridge): it waits
// with waitid(P_PID, WNOWAIT) so the bridge stays a zombie, which keeps its
// pid, and so its process group id, reserved until the destructor has killed
// whatever is left of the group and reaped the bridge.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace constellation::testing {

// The scenarios binary in this test's runfiles.
std::string ScenarioPath();

struct RunOptions {
  std::vector<std::string> args;                         // argv[1...]
  std::optional<std::string> format = "json";            // CONSTELLATION_FORMAT; nullopt: unset
  std::vector<std::pair<std::string, std::string>> env;  // extra environment variables
  std::string stdin_data;                                // written to the program's stdin
  bool close_stdin = true;                               // close stdin once stdin_data is written
  absl::Duration timeout = absl::Seconds(30);            // hang guard for the whole run
};

// How the started process (the bridge, for programs that call init()) ended.
struct ExitStatus {
  bool timed_out = false;
  bool exited = false;  // exited normally: `code` is valid
  int code = -1;
  int signal = 0;  // killed by this signal
  // The shell's view: code, or 128 + signal.
  int ShellCode() const { return exited ? code : 128 + signal; }
  std::string ToString() const;
};

class Program {
 public:
  Program(const std::string& path, RunOptions options);
  ~Program();  // SIGKILLs whatever is left of the process group and reaps the bridge
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  pid_t os_pid() const { return pid_; }

  // The next complete line of stdout (without its '\n'), read as the program
  // writes it. False once the program has exited and its output is drained,
  // or on timeout (which also fails the test).
  bool NextLine(std::string* line);

  // Queues bytes for stdin; they are written as the pipe accepts them.
  void WriteStdin(absl::string_view data);
  // Closes stdin once everything queued is written.
  void CloseStdin();

  // Sends `signal` to the started process only (not its group).
  void Signal(int signal);

  // Waits until the started process exits, then drains what is left in the
  // pipes (without waiting for other holders of them to close).
  ExitStatus Wait();

  bool exited() const { return status_.has_value(); }
  bool timed_out() const { return timed_out_; }
  const std::string& stdout_text() const { return out_; }
  const std::string& stderr_text() const { return err_; }
  // Every complete stdout line read so far.
  const std::vector<std::string>& lines() const { return lines_; }

  // OS pids in the program's process group other than the started process.
  std::vector<pid_t> GroupMembers() const;
  // Waits (boundedly, checking every few ms) until the group holds nothing
  // but the started process; returns what is still there after `limit`.
  std::vector<pid_t> WaitGroupEmpty(absl::Duration limit) const;

 private:
  // One round of poll(); returns false when nothing more can happen.
  bool Pump();
  void OnExited();
  void Drain(int* fd, std::string* into);
  void SplitLines();
  void TimeOut();

  RunOptions options_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::string stdin_pending_;
  bool stdin_close_requested_ = false;
  std::string out_, err_;
  size_t out_split_ = 0;  // bytes of out_ already split into lines_
  std::vector<std::string> lines_;
  size_t next_line_ = 0;
  absl::Time deadline_;
  bool timed_out_ = false;
  std::optional<ExitStatus> status_;
  bool reaped_ = false;
};

// ---- the JSON format ---------------------------------------------------------------

struct JsonValue {
  enum Kind { kString, kNumber, kBool } kind = kString;
  std::string str;
  int64_t number = 0;
  bool boolean = false;
};
// Parses one flat JSON object (string, integer and boolean values only).
absl::StatusOr<std::map<std::string, JsonValue>> ParseFlatJson(absl::string_view line);

struct Event {
  enum Type { kSpawn, kOutput, kEof, kExit } type = kOutput;
  std::string pid;
  std::string child;        // kSpawn
  int fd = 0;               // kOutput, kEof
  std::string data;         // kOutput, base64-decoded
  std::optional<int> code;  // kExit
  std::string signal;       // kExit: "SIGABRT", ...
  size_t line = 0;          // 0-based line number on stdout
};
// Parses one line of the JSON format, checking it has exactly DESIGN.md's fields.
absl::StatusOr<Event> ParseEvent(absl::string_view line);

struct ProcessRecord {
  std::string pid;
  std::string parent;                 // "" for the root
  std::vector<std::string> children;  // in spawn order
  std::string out, err;               // everything written to fd 1 and fd 2
  bool out_eof = false, err_eof = false;
  int exits = 0;
  std::optional<int> code;                               // set if it exited with a code
  std::string signal;                                    // set if it was killed by a signal
  bool spoke = false;                                    // any line of its own
  size_t first_line = 0, spawn_line = 0, exit_line = 0;  // 0-based stdout lines
  int depth = 0;                                         // root 0
  std::string ExitString() const;                        // "code 0", "signal SIGKILL", "never exited"
};

// The process tree and every process's output, as the bridge reported them.
struct Trace {
  std::vector<Event> events;
  std::map<std::string, ProcessRecord> processes;
  std::string root;
  // Broken invariants: unparseable lines, a line of a child before its spawn
  // line, a pid spawned twice, output after EOF or exit, a pid that never
  // exits or exits twice.
  std::vector<std::string> errors;

  // DESIGN.md's rule, from the exit lines in order: 0 if all exited 0, else
  // the first failure's code (128+n for signal n).
  int ExpectedBridgeCode() const;
  const ProcessRecord* Find(const std::string& pid) const;
  const ProcessRecord& Root() const;
  // Every process whose stdout is exactly `out`.
  std::vector<const ProcessRecord*> WithStdout(const std::string& out) const;
  std::string Dump() const;  // readable, for failure messages
};
Trace ParseTrace(const std::vector<std::string>& lines);

int SignalNumber(const std::string& name);  // "SIGKILL" -> 9; -1 if unknown

// Follows a running Program's JSON events as they arrive.
class EventReader {
 public:
  explicit EventReader(Program* program) : program_(program) {}
  // Reads events until `done` is true for one (then true), or the program
  // ends first (false). Lines that do not parse fail the test.
  bool ReadUntil(const std::function<bool(const Event&)>& done);
  // Until `pid` has written `text` to stdout (anywhere in its output so far).
  bool ReadUntilStdout(const std::string& pid, const std::string& text);

  std::string root;                           // the first pid that spoke
  std::map<std::string, std::string> out;     // stdout so far, by pid
  std::map<std::string, std::string> parent;  // spawned pid -> parent
  std::set<std::string> exited;

 private:
  Program* program_;
};

// ---- the usual run ---------------------------------------------------------------------

struct RunResult {
  ExitStatus exit;
  std::string out, err;
  std::vector<std::string> lines;
  Trace trace;  // empty unless options.format == "json"
};

// Runs the scenarios binary to the end. With the JSON format it also checks
// (with EXPECTs) that the trace keeps its invariants, that the bridge's exit
// code follows DESIGN.md's rule from the reported exits, and, for every
// format, that no process of the program is left (within 10 s) after it exits.
RunResult RunScenario(RunOptions options);
RunResult RunScenario(std::vector<std::string> args);

// Lines of `text` (a trailing piece without '\n' is a line too).
std::vector<std::string> Lines(const std::string& text);

// Whether OS pid `pid` still exists (any state, zombie included), and its
// state letter from /proc/<pid>/stat ('\0' if gone).
char ProcessState(pid_t pid);
// The start time (clock ticks since boot) of `pid`, 0 if it is gone; to tell a
// reused pid from the original.
uint64_t ProcessStartTime(pid_t pid);

}  // namespace constellation::testing
