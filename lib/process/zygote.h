#pragma once

// The zygote: a fork server that local mode's spawn() uses instead of
// re-executing /proc/self/exe (docs/process-model.md, "The zygote").
//
// init() in the top process calls StartZygote() before it does anything
// else (no thread, no data port, no bridge yet), so the zygote holds exactly
// the state the program had on entering init(): what a fresh exec of the same
// binary with the same argv and environment reaches at init(). The zygote then
// only waits on its socket; for each request from the bridge it forks a child
// that returns from StartZygote() (with the request's hand-off fds) and goes
// on into init()'s spawned-process path: no exec, no dynamic loading, and the
// pages loading made (relocations, libraries' data) stay shared. With spares
// (KeepSpares) the child was forked ahead and the request is handed to it.
//
// What a child inherits, beside the state at init(): fds 0 and 1 on
// /dev/null, fd 2 as the top process had it (where a failure to start is
// seen, as with exec); the fds the program itself had open before init(); the
// signal dispositions of init() time, with an empty mask and SIGCHLD at its
// default; the address-space layout of the zygote (ASLR is per program, not
// per process). Nothing the runtime made (the bridge's socket, data ports,
// another child's hand-off) reaches it: the zygote never holds them.
//
// The bridge (the zygote's parent) is the only other end of its socket; the
// zygote is one program's, runs as its user, and exits when the bridge's end
// closes (or the bridge dies). CONSTELLATION_ZYGOTE=off turns it off: every
// spawn then re-executes /proc/self/exe, as it also does whenever a request's
// argv or environment differs from the zygote's.
//
// A node daemon has no fork of the program to start one from: it executes
// the binary once with kZygoteFdEnv naming the zygote's socket
// (Zygote::Exec), and that process's init() serves (ServeExecZygote) before
// anything else, in the same state a launch executed with the same argv and
// environment reaches at init(). Such a zygote ends when its socket closes.
//
// Threading: StartZygote() runs in a single-threaded process. A Zygote is
// used by one thread at a time (the bridge's; the node daemon's launches
// take a lock).

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/process/launch.h"
#include "lib/process/zygote_signals.h"  // its children call RestoreProgramSignals, spares EnterSpareSignals
#include "proto/local.pb.h"

namespace constellation::process_internal {

inline constexpr char kZygoteEnv[] = "CONSTELLATION_ZYGOTE";

struct ZygoteStart;

// The launcher's end (the bridge's, or a node daemon's): asks the zygote to
// fork children.
class Zygote {
 public:
  // Executes `options.path` (with its argv and environment, stdin and stdout
  // on /dev/null, stderr inherited) as a zygote that serves what Serves()
  // accepts. Unlike StartZygote's, this zygote is not the caller's fork:
  // destroying it does not wait for its end.
  static absl::StatusOr<std::unique_ptr<Zygote>> Exec(const LaunchOptions& options);

  // Ends the zygote: in the process that started it, says the launcher goes
  // on and closes the socket; a forked zygote's launcher (the bridge) then
  // waits, boundedly, until it has ended, leaving the reaping to its usual
  // waitpid. A fork of that process (the root) only closes its copy.
  //
  // Who removes the cgroup base when the launcher dies: as a monitor does
  // (lib/process/monitor.h), a spare that ends unused removes it if its leaf
  // was the last. An executed zygote tells its spare the launcher died when
  // the socket closes without that word (the spare of a zygote that died
  // itself leaves the base: a node daemon goes on with it); a forked one dies
  // with the bridge (PR_SET_PDEATHSIG), so its spare takes any end for it.
  ~Zygote();
  Zygote(const Zygote&) = delete;
  Zygote& operator=(const Zygote&) = delete;

  // Whether a process launched with `options` is what a fork of the zygote
  // gives: the same executable, argv and environment, stdin on /dev/null.
  // False once the zygote is gone.
  bool Serves(const LaunchOptions& options) const;

  // From now on the zygote keeps a spare (docs/process-model.md, "Spares"):
  // the next spawn's monitor and user process, forked ahead, the process in
  // its own leaf under `base` (none when cgroups are off). Launch hands a
  // request to it and forks the next spare. Call once, before Launch.
  void KeepSpares(const pb::CgroupBase& base);

  // Forks a child that runs init()'s spawned path with `info`, or hands
  // `info` to the spare forked ahead (its listen_fd() is passed along and
  // closed here). Returns the child's OS pid (the spawn's monitor's).
  // Unavailable once the zygote is gone (the caller re-executes instead).
  // A zygote that does not answer within kAnswerTimeoutMs, or (an executed
  // one) answers with a process that is not its child, is killed, and the
  // launch fails with DeadlineExceeded or Internal: a fork it made may run,
  // but cannot connect to a launcher that forgot it.
  absl::StatusOr<pid_t> Launch(const pb::SpawnInfo& info);

  // Takes the zygote's pidfd (readable once it has ended; -1 if none), for a
  // caller that waits for several to end at once; the destructor then does
  // not wait.
  int TakePidfd() { return std::exchange(pidfd_, -1); }

  pid_t os_pid() const { return pid_; }

  static constexpr int kAnswerTimeoutMs = 10000;
  void set_answer_timeout_ms(int ms) { answer_timeout_ms_ = ms; }  // for tests

 private:
  friend ZygoteStart StartZygote(std::vector<std::string> argv);
  Zygote(int fd, pid_t pid, int pidfd, std::string path, std::vector<std::string> argv, std::vector<std::string> env);

  // Ends this end: the zygote sees its socket close (and is killed first
  // when `kill`). Launch answers Unavailable from then on.
  void Abandon(bool kill);
  // The zygote's answer to a launch sent, within kAnswerTimeoutMs.
  absl::StatusOr<int64_t> AwaitAnswer();

  // Sends one tagged message with `fds` and `payload`; false once the zygote is gone.
  bool Send(char tag, const int* fds, int nfds, const std::string& payload);

  int fd_;
  pid_t owner_;  // the process that started the zygote
  // Executed by Exec (a node daemon's): its end is not waited for, and its
  // answers are checked, as it is not a fork of the launcher's own program.
  bool executed_ = false;
  pid_t pid_;
  int pidfd_;
  std::string path_;
  std::vector<std::string> argv_;
  std::vector<std::string> env_;
  int answer_timeout_ms_ = kAnswerTimeoutMs;
};

// What StartZygote() returns: in the caller, `zygote` (null when it could
// not start); in a child the zygote forked, `child` is true with the
// hand-off's fds (CLOEXEC), or, in a spare, with `spare_fd`, where its
// spawn's hand-off comes (AwaitSpawn), and the launcher's cgroup base.
struct ZygoteStart {
  std::unique_ptr<Zygote> zygote;
  bool child = false;
  int memfd = -1;      // the pb::SpawnInfo (ReadSpawnInfo)
  int listen_fd = -1;  // the process's data port
  int spare_fd = -1;
  pb::CgroupBase base;    // a spare's
  bool executed = false;  // a spare's: its zygote was executed (by a node daemon), not forked by its launcher
  // A spare's guess at its spawn's resources (those of the spawn before it),
  // written as its leaf's limits ahead; none before the first spawn.
  std::optional<pb::Resources> expected;
};

// In a spare: waits for its spawn's hand-off (memfd, listen_fd, CLOEXEC).
// False when the zygote closed the spare's socket instead (it is ending;
// `launcher_gone`, if given, is set when it said its launcher died), or
// when `watched_fd` (>= 0: the spare's end of its user process's control
// socket) finds its other end closed first: the process the spawn was to
// run in is gone, and the spare must end so that the zygote forks instead.
bool AwaitSpawn(int spare_fd, int* memfd, int* listen_fd, int watched_fd = -1, bool* launcher_gone = nullptr);
// Sends a spawn's hand-off as the zygote sends it to a spare (the spare to
// its user process); false if the other end is gone.
bool SendSpawn(int fd, int memfd, int listen_fd);

// Forks the zygote from this (single-threaded) process, whose argv is
// `argv`. Returns in the caller, and once in every child the zygote forks
// (see ZygoteStart).
ZygoteStart StartZygote(std::vector<std::string> argv);

// In a process Zygote::Exec started (init(), before anything else): serves
// launches on `sock` until it closes, then exits. Returns only in a child
// or a spare, as StartZygote does.
ZygoteStart ServeExecZygote(int sock);

// CONSTELLATION_ZYGOTE (`value`, may be null): unset, "on" or "auto" a
// zygote with spares; "no-spare" a zygote that forks at each request; "off"
// none. Anything else is an error naming what is accepted.
enum class ZygoteMode { kOff, kNoSpare, kOn };
absl::StatusOr<ZygoteMode> ParseZygoteMode(const char* value);

}  // namespace constellation::process_internal
