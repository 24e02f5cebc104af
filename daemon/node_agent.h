#pragma once

// NodeAgent: the node daemon's end of its processes' connections. Processes
// started on this node connect to the agent's unix socket exactly as local
// mode's processes connect to the bridge (same monitor, same packets); the
// agent hands their events to the daemon (which streams them to the master)
// and their spawn requests to the daemon (which asks the master), and sends
// the replies back.
//
// Threading: one thread of its own runs the socket loop and calls the
// callbacks. Register, KillDeployment, KillAll and the reply functions may be
// called from any thread.

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/core/pid.h"
#include "lib/process/request_chunks.h"
#include "proto/local.pb.h"

namespace constellation::daemon {

class NodeAgent {
 public:
  using Reply = std::function<void(const pb::SpawnReply&)>;
  struct Callbacks {
    std::function<void(uint64_t deployment, const pb::ProcessEvent& event)> on_event;
    // Must not block the loop: answer through `reply`, from any thread, once.
    std::function<void(uint64_t deployment, const pb::SpawnRequest& request, Reply reply)> on_spawn;
  };

  static absl::StatusOr<std::unique_ptr<NodeAgent>> Start(Callbacks callbacks);
  ~NodeAgent();

  // The abstract socket name processes connect to.
  const std::string& socket_name() const { return name_; }

  // A process is about to be launched for `deployment`: call before it can
  // connect. Then Started() with the OS pid launched (it becomes the
  // monitor), or Forget() if the launch failed.
  void Register(const Pid& pid, uint64_t deployment);
  void Started(const Pid& pid, pid_t monitor_os_pid);
  void Forget(const Pid& pid);

  // SIGKILLs every process of `deployment` (or all) on this node.
  void KillDeployment(uint64_t deployment);
  void KillAll();

  // Processes registered and not yet exited.
  size_t live() const;

 private:
  struct Process {
    uint64_t deployment = 0;
    pid_t monitor_os_pid = 0;
    pid_t os_pid = 0;
    int conn = -1;
    int pidfd = -1;
    bool exited = false;
  };

  NodeAgent(std::string name, int listen_fd, int wake_fd, Callbacks callbacks);
  void Loop();
  void Accept();
  void Read(int conn);
  void Close(int conn);
  void Handle(int conn, const pb::LocalMessage& message);
  void Exited(const Pid& pid, const pb::ExitEvent& exit);
  void CheckNeverConnected(const Pid& pid);
  void SendReplies();
  // Hands a reply to the loop (any thread).
  void QueueReply(const Pid& requester, const pb::SpawnReply& reply);
  void Kill(const std::function<bool(const Process&)>& which);

  const std::string name_;
  const int listen_fd_;
  const int wake_fd_;  // eventfd: replies queued, or stop
  const Callbacks callbacks_;

  mutable std::mutex mu_;
  std::map<Pid, Process> processes_;                     // guarded by mu_
  std::vector<std::pair<Pid, pb::SpawnReply>> replies_;  // guarded by mu_
  bool stopping_ = false;                                // guarded by mu_

  // Loop thread only.
  std::map<int, Pid> conns_;                       // identified connections (-> pid); unidentified map to a null Pid
  std::map<int, RequestChunks> partial_requests_;  // spawn requests arriving in chunks, per connection
  std::thread thread_;
};

}  // namespace constellation::daemon
