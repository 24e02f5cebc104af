#pragma once

// One daemon process for the cluster tests (or any long-running process whose
// stdout says when it is ready), started with the shared harness's
// SpawnInGroup (tests/harness/spawn.h).
//
// Process hygiene. Each daemon is started in its own process group; the
// processes a node launches (monitor and user process) stay in that group,
// also once they are orphaned by a daemon that died first. A daemon is reaped
// with waitid(WNOWAIT) first so its pid (and so its group id) stays reserved
// until everything left in the group has been SIGKILLed. (The test process is
// not made a subreaper: Program counts zombies as leftovers.)
//
// A daemon can be started under `ip netns exec NS`: ip execs the daemon in
// place, so the pid and group are the same.

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace constellation::testing {

// One daemon process (or any long-running process whose stdout says when it
// is ready). A background thread collects stdout and stderr (so the pipes
// never fill) and lets the test wait for a line.
class Daemon {
 public:
  // argv[0] is the program to run (a path, or a name found on PATH).
  Daemon(std::string name, std::vector<std::string> argv);
  ~Daemon();  // Stop()
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  const std::string& name() const { return name_; }
  pid_t os_pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  // Waits until stdout has a line starting with `prefix`; returns the rest of
  // that line. An error if the daemon exits first or `timeout` passes.
  absl::StatusOr<std::string> WaitForLine(const std::string& prefix, absl::Duration timeout);
  // "constellation: <what> listening on HOST:PORT" -> HOST:PORT.
  absl::StatusOr<std::string> WaitListening(const std::string& what, absl::Duration timeout);

  // Waits (bounded) for the daemon to exit on its own; its shell exit code,
  // or nullopt if it is still running after `timeout`.
  std::optional<int> WaitExit(absl::Duration timeout);
  bool exited() const;

  // SIGKILLs the daemon alone (not its group): a crash. Returns at once.
  void Crash();
  // SIGTERM, a bounded wait (`grace`), then SIGKILL for the daemon and
  // everything left in its group; reaps all of it. Idempotent. A daemon that
  // needs the SIGKILL is only logged: shutdown has a test of its own.
  void Stop(absl::Duration grace = absl::Seconds(5));

  // OS pids of live (not zombie) processes in the daemon's group other than
  // the daemon itself: the processes it started.
  std::vector<pid_t> Launched() const;
  // Waits (bounded, checking every few ms) until Launched() is empty; returns
  // what is left after `limit`.
  std::vector<pid_t> WaitLaunchedGone(absl::Duration limit);
  // Reaps zombies of this group that were reparented to the test process.
  void ReapOrphans();

  // stdout and stderr so far.
  std::string stdout_text() const;
  std::string stderr_text() const;
  std::string Describe() const;  // name, pid, state and the tail of its output, for failure messages

 private:
  void ReadLoop(int out_fd, int err_fd);
  void OnExit();

  std::string name_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop the reader
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string out_, err_;  // guarded by mu_
  bool eof_ = false;       // guarded by mu_: both pipes at EOF
  std::optional<int> exit_code_;
  bool reaped_ = false;
};

}  // namespace constellation::testing
