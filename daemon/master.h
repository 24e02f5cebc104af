#pragma once

// Master: places processes on node daemons and runs the bridge for cdeploy.
//
// - Nodes (from nodes.toml) are reached over gRPC; each has an Attach stream
//   on which the node sends its processes' events. A broken stream (or failed
//   keepalive) marks the node lost within a few seconds: its resources leave
//   the scheduler and its processes are reported as exited with an error.
//   The master keeps trying to reattach and takes the node back when it can.
// - Spawn requests (from nodes, on behalf of their processes) are placed by
//   the scheduler (try_spawn fails at once when nothing fits; spawn waits, in
//   fair order), the binary is uploaded to the chosen node if it lacks it,
//   and the node launches the process.
// - Deploy (from cdeploy) receives the binary (once: content-addressed),
//   starts the root process, forwards stdin to it, and streams every event of
//   the deployment back in order (a child's spawn event before anything of
//   the child's), then the exit code.
//
// Security: the Master service answers node certificates only, the Bridge
// client and admin ones (security/authz.h); a deployment records the identity
// that started it (its owner). The master reaches nodes with its own
// certificate.
//
// Thread-safe: gRPC calls it from many threads; one lock guards the state,
// and no RPC is made while holding it.

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "daemon/binary_cache.h"
#include "daemon/config.h"
#include "daemon/security/authz.h"
#include "daemon/security/credentials.h"
#include "lib/core/pid.h"
#include "proto/cluster.grpc.pb.h"
#include "scheduler/scheduler.h"

namespace constellation::daemon {

class Master {
 public:
  // `self_addr` is where nodes reach the master's Master service;
  // `credentials` are the master's own (to reach nodes; insecure or not).
  Master(ClusterConfig config, std::string self_addr, std::unique_ptr<BinaryCache> cache,
         const security::Credentials& credentials);
  ~Master();

  // Starts attaching to every node (in background threads) and waits until
  // every node is attached or `timeout` has passed; returns how many are.
  size_t Start(absl::Duration timeout);
  // Where nodes reach the Master service (the bound address, once known). Before Start().
  void set_self_addr(std::string addr) { self_addr_ = std::move(addr); }

  grpc::Status Spawn(const pb::MasterSpawnRequest& request, pb::SpawnReply* reply);
  // `owner`: the caller, already authorized as a client or admin.
  grpc::Status Deploy(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<pb::DeployEvent, pb::DeployRequest>* stream,
                      const security::Identity& owner);

  // The gRPC adapters; they only forward.
  pb::Master::Service* master_service() { return &master_service_; }
  pb::Bridge::Service* bridge_service() { return &bridge_service_; }

 private:
  struct Node {
    std::string addr;
    Resources capacity;
    std::shared_ptr<pb::Node::Stub> stub;
    bool up = false;
    std::set<std::string> binaries;  // known to be cached there
    std::unique_ptr<std::mutex> upload_mu = std::make_unique<std::mutex>();
  };
  struct Process {
    uint64_t deployment = 0;
    std::string node;
    scheduler::AllocationId allocation = 0;
  };
  struct Deployment {
    security::Identity owner;  // who started it: only it or an admin may manage it
    pb::BinaryId binary;
    std::vector<std::string> env;
    std::string secret;  // the data-plane secret of its processes (lib/net/handshake.h)
    std::set<Pid> announced;
    std::map<Pid, std::vector<pb::ProcessEvent>> early;  // events of a child not yet announced
    std::deque<pb::DeployEvent> outbox;
    int live = 0;
    int exit_code = 0;
    bool done = false;       // every process has exited
    bool cancelled = false;  // cdeploy went away: its processes are being killed
    bool detached = false;   // nobody streams it any more: erase once done
  };

  class MasterAdapter : public pb::Master::Service {
   public:
    explicit MasterAdapter(Master* m) : m_(m) {}
    grpc::Status Spawn(grpc::ServerContext* c, const pb::MasterSpawnRequest* r, pb::SpawnReply* out) override {
      grpc::Status denied = m_->authz_.Require(*c, {security::Role::kNode}, "Master.Spawn");
      return denied.ok() ? m_->Spawn(*r, out) : denied;
    }

   private:
    Master* m_;
  };
  class BridgeAdapter : public pb::Bridge::Service {
   public:
    explicit BridgeAdapter(Master* m) : m_(m) {}
    grpc::Status Deploy(grpc::ServerContext* c,
                        grpc::ServerReaderWriter<pb::DeployEvent, pb::DeployRequest>* s) override {
      absl::StatusOr<security::Identity> caller =
          m_->authz_.Check(*c, {security::Role::kClient, security::Role::kAdmin}, "Bridge.Deploy");
      if (!caller.ok()) {
        return grpc::Status(static_cast<grpc::StatusCode>(caller.status().code()),
                            std::string(caller.status().message()));
      }
      return m_->Deploy(c, s, *caller);
    }

   private:
    Master* m_;
  };

  void AttachLoop(std::string addr);
  void NodeUp(const std::string& addr);
  void NodeLost(const std::string& addr, const std::string& why);
  // Locked helpers.
  void DeliverLocked(uint64_t deployment, const pb::ProcessEvent& event);
  void AnnounceLocked(uint64_t deployment, const Pid& parent, const Pid& child);
  void NameLocked(uint64_t deployment, const Pid& pid);
  void ExitedLocked(const Pid& pid, Deployment& deployment, const pb::ExitEvent& exit);
  void CollectGrantsLocked();
  // Places `resources` (waiting if `wait`), uploads the binary and launches.
  absl::StatusOr<Pid> PlaceAndLaunch(uint64_t deployment, pb::LaunchRequest launch, bool wait, std::string* node_out);
  absl::StatusOr<scheduler::Allocation> Place(const Resources& resources, bool wait, uint64_t deployment);
  absl::Status EnsureBinary(const std::string& node, const pb::BinaryId& binary);
  void KillDeployment(uint64_t deployment);
  Resources RootResources(const pb::DeployStart& start);
  absl::StatusOr<Resources> QueryOnANode(const pb::DeployStart& start);
  absl::Status ReceiveBinary(grpc::ServerReaderWriter<pb::DeployEvent, pb::DeployRequest>* stream,
                             const pb::BinaryId& id);

  const ClusterConfig config_;
  std::string self_addr_;
  std::unique_ptr<BinaryCache> cache_;
  const security::Authorizer authz_;
  MasterAdapter master_service_{this};
  BridgeAdapter bridge_service_{this};

  std::mutex mu_;
  std::condition_variable cv_;                              // grants, deployment events, shutdown
  scheduler::Scheduler scheduler_;                          // guarded by mu_
  std::map<std::string, Node> nodes_;                       // guarded by mu_
  std::map<Pid, Process> processes_;                        // guarded by mu_
  std::map<uint64_t, Deployment> deployments_;              // guarded by mu_
  std::map<scheduler::TicketId, scheduler::Grant> grants_;  // guarded by mu_
  uint64_t next_deployment_ = 1;                            // guarded by mu_
  bool stopping_ = false;                                   // guarded by mu_
  std::set<grpc::ClientContext*> attach_calls_;             // guarded by mu_: cancelled at shutdown
  std::vector<std::thread> threads_;
};

}  // namespace constellation::daemon
