#pragma once

// NodeAgent: the node daemon's end of its processes' connections. Processes
// started on this node connect to the agent's unix socket exactly as local
// mode's processes connect to the bridge (same monitor, same packets); the
// agent hands their events to the daemon (which streams them to the master)
// and their spawn requests to the daemon (which asks the master), and sends
// the replies back.
//
// Who may connect: the socket is a file in a private directory (0700, see
// lib/process/local_socket.h), and each connection's SO_PEERCRED must be
// this daemon's uid and the OS pid of a monitor it launched (the process
// posix_spawn started, which connects before it forks the user's code); its
// hello must name that very process. A connection from any other process is
// closed at once, except while a launch is in flight (Register()ed, not yet
// Started(): its OS pid is not known yet), when up to kMaxUnidentified are
// kept until the launch settles. So a flood of connections costs the daemon
// no fds, and its gRPC server keeps answering.
//
// The socket loop is lib/process/process_server.h's; the agent is its
// Handler (admission, holds). Its process table is a Bridge
// (lib/process/bridge.h), the same as local mode's: which connection speaks
// for which process, a process whose monitor's connection closed before its
// exit was reported is reported killed ("its monitor died"), one that ended
// without connecting exited 127 ("ended before init()").
//
// Exit verdicts: a process's `watch` packet names the processes it holds
// channels to; the agent answers each pid once with a `gone` packet, from its
// GoneTable (daemon/gone_table.h): at once if the verdict is known, else when
// it comes, from this node's own processes' exits, the master's Node.Gone
// (Gone()) or the master's answers to what the agent asks it through
// on_watch (pids that are not this node's own live processes). After the
// master comes back, AskAgain() asks it again about every pid still waited
// on. A deployment's table goes when the node runs no process of it.
//
// Threading: one thread of its own runs the socket loop and calls the
// callbacks. Register, KillDeployment, KillAll, Signal, Gone, AskAgain and
// the reply functions may be called from any thread.

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "daemon/gone_table.h"
#include "lib/core/pid.h"
#include "lib/process/bridge.h"
#include "lib/process/local_socket.h"
#include "lib/process/process_server.h"
#include "proto/local.pb.h"

namespace constellation::daemon {

class NodeAgent final : private internal::ProcessServer::Handler {
 public:
  using Reply = std::function<void(const pb::SpawnReply&)>;
  struct Callbacks {
    std::function<void(uint64_t deployment, const pb::ProcessEvent& event)> on_event;
    // Must not block the loop: answer through `reply`, from any thread, once.
    std::function<void(uint64_t deployment, const pb::SpawnRequest& request, Reply reply)> on_spawn;
    // Ask the master which of `pids` (at most 1024) are gone; answers come
    // back through Gone(). Must not block the loop. May be null (nothing asked).
    std::function<void(uint64_t deployment, const std::vector<Pid>& pids)> on_watch;
  };

  // Connections kept at once from processes not (yet) known to be monitors.
  static constexpr size_t kMaxUnidentified = 64;

  static absl::StatusOr<std::unique_ptr<NodeAgent>> Start(Callbacks callbacks);
  ~NodeAgent() override;  // removes the socket and its directory

  // The socket's path, which processes connect to (SpawnInfo.bridge).
  const std::string& socket_name() const { return listener_.path; }

  // A process is about to be launched for `deployment`: call before it can
  // connect. Then Started() with the OS pid launched (it becomes the
  // monitor), or Forget() if the launch failed.
  void Register(const Pid& pid, uint64_t deployment);
  void Started(const Pid& pid, pid_t monitor_os_pid);
  void Forget(const Pid& pid);

  // SIGKILLs every process of `deployment` (or all) on this node.
  void KillDeployment(uint64_t deployment);
  void KillAll();
  // Sends `signal` to the processes of `deployment`, or (when `pids` is not
  // empty) to those of them only; deployment 0 with `pids`: those pids,
  // whatever their deployment. SIGKILL goes to the monitor and the user
  // process; any other signal to the user process alone (its monitor then
  // reports how it ended), or to the monitor if the user process has not
  // started yet.
  void Signal(uint64_t deployment, const std::vector<Pid>& pids, int signal);

  // Verdicts on processes of `deployment` (the master's Node.Gone, or its
  // answer to on_watch): applied on the loop, if the node runs a process of it.
  void Gone(uint64_t deployment, std::vector<pb::ProcessGone> gone);
  // The master is back: ask it again about every pid still waited on.
  void AskAgain();

  // Processes registered and not yet exited.
  size_t live() const;
  // Whether a process of `deployment` is registered and not yet exited.
  bool Runs(uint64_t deployment) const;

 private:
  // What the Bridge does not keep about a launched process.
  struct Launched {
    uint64_t deployment = 0;
    int pidfd = -1;            // its monitor's, once Started()
    pid_t monitor_os_pid = 0;  // from Started(): pidfd_open is tried again while fds ran out
  };
  // Receives the Bridge's events (under mu_), to be handed on by Deliver().
  class Collector final : public internal::OutputFormatter {
   public:
    void Spawn(const Pid&, const Pid&) override {}  // the master's to print
    void Output(const Pid& pid, int fd, absl::string_view data) override;
    void Eof(const Pid& pid, int fd) override;
    void Exit(const Pid& pid, const pb::ExitEvent& exit) override;
    void Flush() override {}
    std::vector<pb::ProcessEvent> events;
  };

  using Conn = internal::ProcessServer::Conn;

  NodeAgent(internal::LocalListener listener, Callbacks callbacks)
      : listener_(std::move(listener)), callbacks_(std::move(callbacks)) {}
  void Loop();
  bool MayConnect(const internal::PeerCredentials& peer) const;
  // Connections whose hello came before Started(): admitted or dropped once it has.
  void ResolveHeld();
  // Unidentified connections from processes that are no monitor of ours, once no launch is in flight.
  void PruneUnidentified();
  // Watches the pidfds of processes started and not yet connected.
  void WatchStarted();
  absl::Status Hello(Conn conn, const pb::LocalMessage& message);
  // Takes the events the Bridge produced, with their deployments, and
  // forgets the processes that exited. Needs mu_.
  std::vector<std::pair<uint64_t, pb::ProcessEvent>> Collect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands events to on_event (loop thread, mu_ not held).
  void Deliver(const std::vector<std::pair<uint64_t, pb::ProcessEvent>>& events);
  void CheckNeverConnected(const Pid& pid);
  // Reports the processes in ended_unaccepted_ that never connected, once an
  // Accept() leaves nothing in the listen queue (out of fds, theirs may wait there).
  void DecideEndedUnaccepted();
  // Exit verdicts (loop thread): a watch packet; the verdicts from Gone() and AskAgain().
  absl::Status OnWatch(Conn conn, const Pid& speaker, const pb::WatchRequest& watch);
  void ApplyVerdicts();
  void Tell(const std::vector<GoneTable::Notice>& notices);
  // Drops the tables of deployments among `deployments` the node runs nothing of any more.
  void DropEnded(const std::set<uint64_t>& deployments);
  bool RunsDeploymentLocked(uint64_t deployment) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Kill(const std::function<bool(const Pid&, const Launched&)>& which, int signal);

  // ProcessServer::Handler, on the loop thread.
  bool Admit(Conn conn, const internal::PeerCredentials& peer) override;
  bool IsHeld(Conn conn) const override { return held_.contains(conn); }
  bool Identified(Conn conn) const override;
  absl::Status OnMessage(Conn conn, const pb::LocalMessage& message) override;
  void OnSpawnRequest(Conn conn, const pb::SpawnRequest& request) override;
  void OnClose(Conn conn) override;
  void OnWake() override {
    ResolveHeld();
    ApplyVerdicts();
  }

  const internal::LocalListener listener_;
  const Callbacks callbacks_;
  std::unique_ptr<internal::ProcessServer> server_;  // set by Start

  mutable std::mutex mu_;
  // The process table (hello, exit on close, never connected); its events go to collector_.
  Collector collector_ ABSL_GUARDED_BY(mu_);
  internal::Bridge bridge_ ABSL_GUARDED_BY(mu_){&collector_};
  std::map<Pid, Launched> launched_ ABSL_GUARDED_BY(mu_);  // registered, exit not yet reported
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // From Gone() and AskAgain(), for the loop.
  std::vector<std::pair<uint64_t, std::vector<pb::ProcessGone>>> verdicts_in_ ABSL_GUARDED_BY(mu_);
  bool ask_again_ ABSL_GUARDED_BY(mu_) = false;

  // Loop thread only.
  std::map<Conn, Pid> conns_;              // identified connections (-> pid); unidentified map to a null Pid
  std::map<Conn, pid_t> peers_;            // every connection's peer OS pid (SO_PEERCRED)
  std::map<Conn, pb::LocalMessage> held_;  // hello read, waiting for Started(): not read further
  std::map<int, Pid> pidfds_;              // pidfds watched
  std::set<Pid> ended_unaccepted_;         // ended before they connected, as far as could be accepted
  bool pidfds_missing_ = false;            // a pidfd_open ran out of fds: WatchStarted tries again
  static constexpr int kRetryMs = 100;     // the loop's turn while either of the above waits
  uint64_t refused_ = 0;                   // connections refused, for a rate-limited warning
  GoneTable gone_;                         // verdicts and who waits on them
  std::thread thread_;
};

}  // namespace constellation::daemon
