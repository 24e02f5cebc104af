#pragma once

// Runs a program under test (usually one that calls init(), so the started
// process is the bridge) in a process group of its own, with
// CONSTELLATION_FORMAT=json by default: feeds its stdin, reads its stdout
// incrementally, and enforces a hang guard (the whole process group is
// SIGKILLed and the test fails, never hangs).
//
// Program reaps only the one process it started: it waits with
// waitid(P_PID, WNOWAIT) so that process stays a zombie, which keeps its pid,
// and so its process group id, reserved until the destructor has killed
// whatever is left of the group and reaped it. One thread uses a Program.

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace constellation::testing {

struct RunOptions {
  std::vector<std::string> args;                         // argv[1...]
  std::optional<std::string> format = "json";            // CONSTELLATION_FORMAT; nullopt: unset
  std::vector<std::pair<std::string, std::string>> env;  // extra environment variables
  std::string stdin_data;                                // written to the program's stdin
  bool close_stdin = true;                               // close stdin once stdin_data is written
  absl::Duration timeout = absl::Seconds(30);            // hang guard for the whole run
};

// How the started process ended.
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
  // `path` is argv[0] (a name without '/' is looked up on PATH).
  Program(const std::string& path, RunOptions options);
  ~Program();  // SIGKILLs whatever is left of the process group and reaps the started process
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  pid_t os_pid() const { return pid_; }
  // "path arg1 arg2", for messages.
  const std::string& command() const { return command_; }

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
  // Every complete stdout line read so far (after the exit, a last line
  // without '\n' too).
  const std::vector<std::string>& lines() const { return lines_; }

  // OS pids in the program's process group other than the started process,
  // zombies included.
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
  std::string command_;
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

}  // namespace constellation::testing
