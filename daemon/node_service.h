#pragma once

// NodeService: the gRPC service every node daemon runs (the master calls it).
// It caches binaries, launches processes through the same monitor as local
// mode (with CONSTELLATION=fabric), streams their events to the master over
// the Attach stream (MasterLink: numbered, kept until the master acks them,
// replayed to a master that attaches again), and relays their spawn requests
// to the master (SpawnRelay). Exit verdicts: it asks the master about the
// processes its processes watch (WatchRelay, Master.Watch), again each time
// the master attaches, and takes the master's Node.Gone; the agent answers
// the watches. When the master's Attach stream ends, it keeps
// its processes for the master grace (MasterGrace) and kills them past it.
// Every call is the master's business alone: each handler checks that the
// caller holds a master certificate of the cluster (security/authz.h).
//
// Ownership: it owns the agent, the link, the grace and the relay. Destroy it
// only after the gRPC server it is registered with has shut down (Attach
// streams must be done); the destructor kills every process it started.
// Thread-safe: gRPC calls it from its own threads.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "daemon/binary_cache.h"
#include "daemon/metrics/node_metrics.h"
#include "daemon/metrics/registry.h"
#include "daemon/node_agent.h"
#include "daemon/node_attach.h"
#include "daemon/node_grace.h"
#include "daemon/node_spawns.h"
#include "daemon/node_watches.h"
#include "daemon/node_zygotes.h"
#include "daemon/security/authz.h"
#include "daemon/security/credentials.h"
#include "lib/core/resources.h"
#include "lib/process/cgroup.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

struct NodeOptions {
  uint64_t max_binary_size = kDefaultMaxBinarySize;
  // A cgroup base made already (--run-as makes it as root); else made here.
  std::optional<internal::CgroupSetup> cgroups;
  uint64_t event_buffer = 64 * kMiB;                // --event-buffer
  absl::Duration master_grace = absl::Seconds(60);  // --master-grace
  std::unique_ptr<Alarm> alarm;                     // the grace's timer; null: a ThreadAlarm
  // Told when a master's Attach stream opens (true) and when it is lost
  // (false), under the link's lock (MasterLink::Hooks): for --join.
  std::function<void(bool attached)> on_master;
  // The node's zygotes (node_zygotes.h); none: CONSTELLATION_ZYGOTE in the
  // daemon's environment says (unset: on, with spares).
  std::optional<process_internal::ZygoteMode> zygotes;
  // Where the node's metrics are kept (metrics/node_metrics.h); must outlive
  // the service. Null: a registry of its own that nobody reads.
  metrics::Registry* metrics = nullptr;
};

class NodeService final : public pb::Node::WithCallbackMethod_Attach<pb::Node::Service> {
 public:
  // `ipv4` (host byte order) is where this node's processes bind their ports.
  // Binaries are cached in `cache_dir` (see BinaryCache for the checks).
  // `credentials` are this node's (for its calls to the master, and whether
  // callers are authenticated at all).
  static absl::StatusOr<std::unique_ptr<NodeService>> Create(uint32_t ipv4, std::string cache_dir,
                                                             const security::Credentials& credentials,
                                                             NodeOptions options = {});
  ~NodeService() override;

  // New each time a node daemon starts (NodeHello.incarnation).
  const std::string& incarnation() const { return link_->incarnation(); }
  const MasterGrace& grace() const { return *grace_; }
  const NodeAgent& agent() const { return *agent_; }
  const NodeZygotes& zygotes() const { return *zygotes_; }
  // The daemon is stopping: Launch and QueryResources answer UNAVAILABLE from
  // now on; what runs keeps running. Idempotent, any thread.
  void Drain() { draining_.store(true); }

  grpc::Status HasBinary(grpc::ServerContext*, const pb::BinaryId* id, pb::HasBinaryReply* reply) override;
  grpc::Status Upload(grpc::ServerContext*, grpc::ServerReader<pb::UploadChunk>* reader, pb::UploadReply*) override;
  // Links in the master's copy of a binary on this machine (BinaryCache::Adopt).
  grpc::Status Adopt(grpc::ServerContext*, const pb::AdoptRequest* request, pb::UploadReply*) override;
  grpc::Status Launch(grpc::ServerContext*, const pb::LaunchRequest* request, pb::LaunchReply* reply) override;
  grpc::Status WriteStdin(grpc::ServerContext*, const pb::StdinChunk* chunk, pb::Empty*) override;
  grpc::Status Kill(grpc::ServerContext*, const pb::KillRequest* request, pb::Empty*) override;
  // Runs the binary's resources query in a cgroup of kQueryResources, bounded by kQueryTimeout.
  grpc::Status QueryResources(grpc::ServerContext*, const pb::ResourcesQuery* query, pb::Resources* reply) override;
  // The master's stream of this node's events (MasterLink); callback API, so nothing waits on a thread.
  grpc::ServerWriteReactor<pb::NodeEvent>* Attach(grpc::CallbackServerContext* context,
                                                  const pb::AttachRequest* request) override;
  grpc::Status Ack(grpc::ServerContext* context, const pb::AckRequest* request, pb::Empty*) override;
  // The master's verdicts on processes of a deployment (at most 1024), for
  // the agent to answer its processes' watches (NodeAgent::Gone).
  grpc::Status Gone(grpc::ServerContext* context, const pb::GoneBatch* batch, pb::Empty*) override;

 private:
  NodeService(uint32_t ipv4, std::unique_ptr<BinaryCache> cache, pb::CgroupBase cgroups,
              const security::Credentials& credentials)
      : ipv4_(ipv4),
        cache_(std::move(cache)),
        cgroups_(std::move(cgroups)),
        authz_(credentials.insecure()),
        relay_(std::make_unique<SpawnRelay>(credentials.ChannelCredentials())) {}
  // Whether the caller is the master (authz_), for the synchronous handlers.
  grpc::Status Admit(const grpc::ServerContext& context, const char* what);
  // UNAVAILABLE once Drain()ed: no new process starts here.
  grpc::Status RefuseIfDraining() const;
  // Past the master grace: nothing this node started outlives its master.
  void MasterGone();

  // What a resources query may use: enough for a program's start-up.
  static constexpr Resources kQueryResources{256 << 20, 0.5};
  static constexpr absl::Duration kQueryTimeout = absl::Seconds(10);

  const uint32_t ipv4_;
  std::unique_ptr<metrics::Registry> own_registry_;  // when NodeOptions::metrics is null
  std::unique_ptr<metrics::NodeMetrics> metrics_;
  std::unique_ptr<BinaryCache> cache_;
  const std::string boot_id_ = BootId();  // HasBinaryReply.boot_id
  const pb::CgroupBase cgroups_;          // where its processes' cgroups go (version 0: none)
  const security::Authorizer authz_;
  // Made in this order by Create, taken apart in the reverse by the destructor.
  std::unique_ptr<SpawnRelay> relay_;
  std::unique_ptr<WatchRelay> watches_;   // its answers go to agent_
  std::unique_ptr<MasterGrace> grace_;    // its expiry uses agent_ and relay_
  std::unique_ptr<MasterLink> link_;      // its hooks use grace_
  std::unique_ptr<NodeZygotes> zygotes_;  // asks agent_ which deployments run here
  std::unique_ptr<NodeAgent> agent_;      // its callbacks use link_, relay_ and watches_
  metrics::Registration running_;         // reads agent_: the first thing the destructor drops
  metrics::Registration zygote_count_;    // reads zygotes_: dropped with running_

  std::mutex mu_;
  std::map<Pid, int> stdin_ ABSL_GUARDED_BY(mu_);  // roots' stdin pipes
  std::atomic<uint64_t> queries_{0};               // names the queries' cgroup leaves
  std::atomic<bool> draining_{false};              // Drain()
};

// Parses "host:port" into an IPv4 address in host byte order ("localhost" and
// dotted quads; names are resolved).
absl::StatusOr<uint32_t> ResolveIpv4(const std::string& host_port);

}  // namespace constellation::daemon
