#include "daemon/master/master.h"

#include "daemon/master/grpc_node_client.h"

namespace constellation::daemon::master {

absl::StatusOr<std::unique_ptr<Master>> Master::Create(const ClusterConfig& config, std::unique_ptr<BinaryCache> cache,
                                                       const security::Credentials& credentials, Options options) {
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(options.state_dir, JobStore::Options());
  if (!store.ok()) return store.status();
  std::unique_ptr<Master> master(new Master());
  master->cache_ = std::move(cache);
  master->store_ = *std::move(store);
  std::vector<NodeSpec> nodes;
  for (const NodeConfig& node : config.nodes) {
    nodes.push_back(
        {std::make_unique<GrpcNodeClient>(node.fabric_addr, credentials.ChannelCredentials()), node.capacity});
  }
  NodeSet::Options node_options;
  // Nodes that join (Master.Join) are dialled as the configured ones are.
  node_options.make_client = [channel = credentials.ChannelCredentials()](const std::string& addr) {
    return std::make_unique<GrpcNodeClient>(addr, channel);
  };
  master->nodes_ = std::make_unique<NodeSet>(std::move(nodes), std::move(node_options));
  master->placement_ = std::make_unique<Placement>();
  master->incoming_ = std::make_unique<IncomingBinaries>(master->cache_.get());
  master->binaries_ = std::make_unique<BinaryDistribution>(master->cache_.get(), master->incoming_.get());
  master->timers_ = std::make_unique<RealTimers>();
  NodeSet* node_set = master->nodes_.get();
  master->gone_ = std::make_unique<GoneBroadcast>(
      [node_set](const std::string& addr) { return node_set->client(addr); }, master->timers_.get());
  master->notifier_ = std::make_unique<CommitNotifier>(master->nodes_.get());
  CommitNotifier* notifier = master->notifier_.get();
  master->store_->SetCommitListener([notifier](const std::vector<uint64_t>& jobs, const std::vector<NodeMark>& marks) {
    notifier->OnCommit(jobs, marks);
  });
  JobManager::Parts parts{master->store_.get(),    master->nodes_.get(), master->placement_.get(),
                          master->binaries_.get(), master->cache_.get(), master->timers_.get(),
                          master->notifier_.get(), master->gone_.get()};
  JobManager::Options manager_options;
  manager_options.master_grace = options.master_grace;
  master->jobs_ = std::make_unique<JobManager>(parts, manager_options);
  master->master_service_ =
      std::make_unique<MasterService>(master->jobs_.get(), master->nodes_.get(), credentials.insecure());
  // A binary starts on its way to the node that will first need it while it still arrives.
  JobManager* jobs = master->jobs_.get();
  BinaryDistribution* binaries = master->binaries_.get();
  auto on_receiving = [jobs, binaries](const pb::BinaryId& id) {
    if (NodeClient* node = jobs->FirstNode(); node != nullptr) binaries->Prefetch(*node, id);
  };
  master->jobs_service_ =
      std::make_unique<JobsService>(master->jobs_.get(), master->store_.get(), notifier, master->cache_.get(),
                                    master->incoming_.get(), on_receiving, credentials.insecure());
  return master;
}

size_t Master::Start(const std::string& self_addr, absl::Duration timeout) {
  jobs_->set_self_addr(self_addr);
  jobs_->Recover();
  nodes_->Start(jobs_.get());
  return nodes_->WaitUp(timeout);
}

Master::~Master() {
  // The servers are shut down already: no RPC handler runs.
  jobs_->Shutdown();  // starters joined: nothing calls the nodes for the jobs any more
  gone_->Shutdown();  // no verdict starts out; those in flight are done (bounded by their deadline)
  timers_.reset();    // no timer fires into the manager or the broadcast
  nodes_->Stop();     // no node event reaches the manager; the nodes keep their processes for their grace
  store_->Flush().IgnoreError();
  store_->SetCommitListener(nullptr);  // waits for a note being delivered to the notifier
  notifier_.reset();                   // its last acks are lost: the next master's attach covers them
  jobs_.reset();
  store_.reset();
}

}  // namespace constellation::daemon::master
