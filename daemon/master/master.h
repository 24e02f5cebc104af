#pragma once

// Master: the cluster's master, composed of its parts. It places processes
// on the nodes of nodes.toml, keeps jobs durably in --state-dir, and serves
// two gRPC services: Master (node daemons, on the master's own port) and
// constellation.v1.Jobs (clients, at the bridge_bind of nodes.toml).
//
//   NodeSet ──events──> JobManager ──> JobStore (SQLite) ──commits──> CommitNotifier
//      ^                  │   │                                       │     │
//      └── NodeClient <───┘   └── Placement (scheduler/), BinaryDistribution   watchers, Node.Ack
//
// Lifetime: Create, register the services, Start once the Master service's
// address is known; destruction stops everything in the order that keeps
// every part's callers alive (the jobs stay in the store for the next master).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/binary_cache.h"
#include "daemon/config.h"
#include "daemon/master/binary_distribution.h"
#include "daemon/master/commit_notifier.h"
#include "daemon/master/gone_broadcast.h"
#include "daemon/master/job_manager.h"
#include "daemon/master/job_store.h"
#include "daemon/master/jobs_service.h"
#include "daemon/master/master_service.h"
#include "daemon/master/node_set.h"
#include "daemon/master/placement.h"
#include "daemon/master/timers.h"
#include "daemon/metrics/master_metrics.h"
#include "daemon/metrics/registry.h"
#include "daemon/security/credentials.h"

namespace constellation::daemon::master {

class Master {
 public:
  struct Options {
    std::string state_dir = "/var/lib/constellation";
    absl::Duration master_grace = absl::Seconds(60);
    // Where the master's metrics are kept (metrics/master_metrics.h); must
    // outlive the master. Null: a registry of its own that nobody reads.
    metrics::Registry* metrics = nullptr;
  };
  // Opens the store (an error if another master holds it, or it is not ours).
  static absl::StatusOr<std::unique_ptr<Master>> Create(const ClusterConfig& config, std::unique_ptr<BinaryCache> cache,
                                                        const security::Credentials& credentials, Options options);
  ~Master();

  grpc::Service* master_service() { return master_service_.get(); }
  grpc::Service* jobs_service() { return jobs_service_.get(); }

  // Resumes the stored jobs and attaches to the nodes (nodes reach the Master
  // service at `self_addr`); waits until every node is up or `timeout` has
  // passed and returns how many are.
  size_t Start(const std::string& self_addr, absl::Duration timeout);

  // The daemon is stopping: no new job is taken (JobsService::Drain); the
  // running ones go on (the nodes keep them for the next master).
  void Drain() { jobs_service_->Drain(); }
  // How many of the nodes of nodes.toml are attached, of how many.
  size_t nodes_attached() const { return nodes_->up().size(); }
  size_t nodes_known() const { return nodes_->addrs().size(); }

 private:
  Master() = default;
  // The metrics read at each scrape: nodes and jobs by state.
  void CollectStates();

  std::unique_ptr<metrics::Registry> own_registry_;  // when Options::metrics is null
  std::unique_ptr<metrics::MasterMetrics> metrics_;
  std::unique_ptr<BinaryCache> cache_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<NodeSet> nodes_;
  std::unique_ptr<Placement> placement_;
  std::unique_ptr<IncomingBinaries> incoming_;
  std::unique_ptr<BinaryDistribution> binaries_;  // its prefetches use nodes_ and incoming_
  std::unique_ptr<Timers> timers_;
  std::unique_ptr<GoneBroadcast> gone_;  // its retries run on timers_
  std::unique_ptr<CommitNotifier> notifier_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<MasterService> master_service_;
  std::unique_ptr<JobsService> jobs_service_;
  metrics::Registration nodes_by_state_;  // read nodes_ and store_: dropped first
  metrics::Registration jobs_by_state_;
};

}  // namespace constellation::daemon::master
