#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "lib/core/pid.h"
#include "lib/process/output_format.h"
#include "proto/local.pb.h"

namespace constellation::internal {

// The bridge's bookkeeping, free of I/O so tests can drive it message by
// message: which processes exist, which connection speaks for which, what to
// print in which order, and when the program is over.
//
// Ordering: a process's connection is read only once its spawn event (sent
// by its parent on the parent's own connection) has been printed, so a
// child's spawn line always comes before anything of the child's. Until then
// the connection is "held": the caller stops reading it, which leaves its
// packets in the kernel instead of buffering them here.
//
// The node daemon keeps its processes' table in a Bridge too: it Announce()s
// what it launches (the master prints their spawn lines), and Remove()s each
// once its exit is reported, so a long-lived daemon keeps no record of them.
//
// Not thread-safe; `out` must outlive the Bridge.
class Bridge {
 public:
  explicit Bridge(OutputFormatter* out) : out_(out) {}

  // The top user process: it has no spawn line.
  void AddRoot(const Pid& root);

  // One packet from connection `conn` (any int the caller uses to tell its
  // connections apart). An error means the connection broke the protocol and
  // should be closed; the processes of other connections are unaffected.
  absl::Status OnMessage(int conn, const pb::LocalMessage& message);

  // The connection closed. A process that had not reported its exit is
  // reported as killed (its monitor died).
  void OnClose(int conn);

  // The process spawned as `pid` ended without ever connecting (it exited
  // before init(), or exec failed). Ignored if it did connect.
  void OnNeverConnected(const Pid& pid);

  // The bridge itself started `child` for `parent` (local mode's spawn):
  // prints the spawn line and expects the child's connection.
  void Spawned(const Pid& parent, const Pid& child, pid_t monitor_os_pid);

  // Expects `pid`'s connection, with no spawn line (someone else prints it).
  // Its monitor's OS pid may come later (SetMonitor); a hello never changes
  // one that is known.
  void Announce(const Pid& pid, pid_t monitor_os_pid = 0);
  void SetMonitor(const Pid& pid, pid_t monitor_os_pid);

  // Forgets `pid`: one whose exit was reported (TakeExited), or one announced
  // whose launch failed. Its connection, if any, speaks for nobody after.
  void Remove(const Pid& pid);

  // The process speaking on `conn`, once its hello has been read.
  std::optional<Pid> PidOf(int conn) const;

  // The connection `pid` speaks on, once it has connected (it may have
  // closed since: the caller's ids must not be reused).
  std::optional<int> ConnOf(const Pid& pid) const;

  // The OS pid of `pid`'s monitor, 0 if unknown.
  pid_t MonitorOsPid(const Pid& pid) const;
  // The OS pid of `pid`'s user process (as its monitor reported it), 0 if unknown.
  pid_t OsPid(const Pid& pid) const;

  // Whether `pid` is a process of the program (announced, the root, or
  // waiting for its parent's spawn line), exited or not.
  bool Knows(const Pid& pid) const;
  // How `pid` ended, once its exit is known; null before (or if unknown).
  const pb::ExitEvent* ExitOf(const Pid& pid) const;

  // Processes that exited since the last call, in order.
  std::vector<Pid> TakeExited();

  // Whether to stop reading `conn` for now.
  bool IsHeld(int conn) const { return held_.contains(conn); }

  // Connections released from hold since the last call.
  std::vector<int> TakeReleased();

  // Spawned processes announced since the last call, with their monitors' OS
  // pids, so the caller can watch for one that never connects.
  std::vector<std::pair<Pid, pid_t>> TakeAnnounced();

  // Whether `pid` has connected (or exited).
  bool HasConnected(const Pid& pid) const;

  // Whether exits, released connections or announcements wait to be taken
  // (TakeExited, TakeReleased, TakeAnnounced). A caller must take them before
  // it sleeps: packets read outside its turn (a process that ended before it
  // was watched) leave them behind, and nothing else may wake it.
  bool HasPending() const { return !exited_.empty() || !released_.empty() || !announced_.empty(); }

  // Every process announced and not yet exited has exited.
  bool Done() const { return live_ == 0; }
  // Processes announced (or the root) and not yet exited.
  int live() const { return live_; }

  // 0 if every process exited 0, else the first failure's code (128+n for signal n).
  int exit_code() const { return exit_code_; }

  // OS pids of monitors and user processes still running, to kill on SIGTERM.
  std::vector<pid_t> LiveOsPids() const;

 private:
  struct Process {
    int conn = -1;
    bool exited = false;
    pid_t monitor_os_pid = 0;
    pid_t os_pid = 0;
    pb::ExitEvent exit;  // once exited
  };

  absl::Status OnHello(int conn, const pb::Hello& hello);
  absl::Status OnEvent(const Pid& speaker, const pb::ProcessEvent& event);
  void Exited(const Pid& pid, const pb::ExitEvent& exit);

  OutputFormatter* out_;
  std::map<Pid, Process> processes_;  // announced processes
  std::map<int, Pid> conns_;          // identified connections
  std::map<Pid, int> waiting_;        // connected before being announced
  std::set<int> held_;
  std::vector<int> released_;
  std::vector<std::pair<Pid, pid_t>> announced_;
  std::vector<Pid> exited_;
  int live_ = 0;
  int exit_code_ = 0;
};

}  // namespace constellation::internal
