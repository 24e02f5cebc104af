#pragma once

// GoneTable: the node agent's side of exit verdicts, free of I/O. It keeps,
// per deployment, which processes are known to be gone (pb::ProcessGone: how
// they exited, their node lost, or no such process) and which of this node's
// processes' connections wait to hear of which pid (local.proto's
// WatchRequest). Each watching connection is told once per pid: at once when
// the verdict is known, else when it comes (Gone). The caller (NodeAgent)
// sends what it is told to send, and asks the master about the pids it is
// told to ask (Master.Watch), feeding the answers back through Gone.
//
// Sources of verdicts, all fed through Gone: this node's own processes'
// exits (their monitors' reports: the node knows first), the master's
// Node.Gone broadcast, and Master.Watch's answers. The first verdict on a pid
// stands.
//
// Bounds: a packet names at most kMaxPidsPerPacket pids and a connection
// waits on at most kMaxWatchesPerConn at once (past either, Watch fails: a
// protocol error, the caller drops the connection). A deployment keeps at
// most kMaxGonePerDeployment verdicts; past it, the oldest are forgotten (a
// later watch of one asks the master again, which keeps them all while the
// deployment runs). The caller drops a deployment's table (Drop) when the
// node runs no process of it any more.
//
// Not thread-safe: the agent's loop thread only.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/core/pid.h"
#include "proto/process.pb.h"

namespace constellation::daemon {

class GoneTable {
 public:
  using Conn = int;  // the caller's connection ids, never reused
  static constexpr int kMaxPidsPerPacket = 1024;
  static constexpr size_t kMaxWatchesPerConn = 65536;
  static constexpr size_t kMaxGonePerDeployment = 65536;

  struct Notice {
    Conn conn;
    pb::ProcessGone gone;
  };
  struct WatchResult {
    std::vector<pb::ProcessGone> now;  // known already: send them to the connection at once
    std::vector<Pid> ask;              // newly watched, not this node's: ask the master
  };

  // `conn`, which speaks for a process of `deployment`, watches `pids`.
  // `local`: whether a pid is one of this node's live processes of the
  // deployment (its end comes from its monitor, not from the master).
  // Watching a pid again is harmless.
  absl::StatusOr<WatchResult> Watch(Conn conn, uint64_t deployment, const std::vector<Pid>& pids,
                                    const std::function<bool(const Pid&)>& local);
  // A verdict on a process of `deployment` (its pid set): kept (unless one is
  // already), and every connection watching the pid is told, once.
  std::vector<Notice> Gone(uint64_t deployment, const pb::ProcessGone& gone);
  // The connection closed: its watches are forgotten.
  void Close(Conn conn);
  // The node runs no process of `deployment` any more.
  void Drop(uint64_t deployment);

  // Every pid watched and not yet known gone, per deployment (to ask the
  // master again after it comes back).
  std::map<uint64_t, std::vector<Pid>> Pending() const;

  size_t watches(Conn conn) const;
  size_t known(uint64_t deployment) const;  // verdicts kept
  size_t deployments() const { return deployments_.size(); }

 private:
  struct Deployment {
    std::map<Pid, pb::ProcessGone> gone;
    std::deque<Pid> order;  // of `gone`, oldest first
    std::map<Pid, std::set<Conn>> watchers;
  };
  std::map<uint64_t, Deployment> deployments_;
  std::map<Conn, std::set<std::pair<uint64_t, Pid>>> by_conn_;  // what each connection waits on
};

}  // namespace constellation::daemon
