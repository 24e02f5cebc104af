#pragma once

// NodeService: the gRPC service every node daemon runs (the master calls it).
// It caches binaries, launches processes through the same monitor as local
// mode (with CONSTELLATION=fabric), streams their events to the master over
// the Attach stream, and relays their spawn requests to the master. When the
// master's Attach stream ends, it kills everything it started.
// Every call is the master's business alone: each handler checks that the
// caller holds a master certificate of the cluster (security/authz.h).
//
// Thread-safe: gRPC calls it from its own threads.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "daemon/binary_cache.h"
#include "daemon/node_agent.h"
#include "daemon/security/authz.h"
#include "daemon/security/credentials.h"
#include "lib/core/resources.h"
#include "lib/process/cgroup.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

class NodeService final : public pb::Node::Service {
 public:
  // `ipv4` (host byte order) is where this node's processes bind their ports.
  // Binaries are cached in `cache_dir` (see BinaryCache for the checks).
  // `credentials` are this node's (for its calls to the master, and whether
  // callers are authenticated at all). `cgroups`, if given, is a base made
  // already (--run-as makes it as root).
  static absl::StatusOr<std::unique_ptr<NodeService>> Create(uint32_t ipv4, std::string cache_dir,
                                                             const security::Credentials& credentials,
                                                             uint64_t max_binary_size = kDefaultMaxBinarySize,
                                                             std::optional<CgroupSetup> cgroups = std::nullopt);
  ~NodeService() override;

  grpc::Status HasBinary(grpc::ServerContext*, const pb::BinaryId* id, pb::HasBinaryReply* reply) override;
  grpc::Status Upload(grpc::ServerContext*, grpc::ServerReader<pb::UploadChunk>* reader, pb::UploadReply*) override;
  grpc::Status Launch(grpc::ServerContext*, const pb::LaunchRequest* request, pb::LaunchReply* reply) override;
  grpc::Status WriteStdin(grpc::ServerContext*, const pb::StdinChunk* chunk, pb::Empty*) override;
  grpc::Status Kill(grpc::ServerContext*, const pb::KillRequest* request, pb::Empty*) override;
  // Runs the binary's resources query in a cgroup of kQueryResources, bounded by kQueryTimeout.
  grpc::Status QueryResources(grpc::ServerContext*, const pb::ResourcesQuery* query, pb::Resources* reply) override;
  grpc::Status Attach(grpc::ServerContext* context, const pb::AttachRequest* request,
                      grpc::ServerWriter<pb::NodeEvent>* writer) override;

 private:
  NodeService(uint32_t ipv4, std::unique_ptr<BinaryCache> cache, pb::CgroupBase cgroups,
              const security::Credentials& credentials)
      : ipv4_(ipv4),
        cache_(std::move(cache)),
        cgroups_(std::move(cgroups)),
        authz_(credentials.insecure()),
        channel_credentials_(credentials.ChannelCredentials()) {}
  void OnEvent(uint64_t deployment, const pb::ProcessEvent& event);
  void OnSpawn(uint64_t deployment, const pb::SpawnRequest& request, NodeAgent::Reply reply);

  // What a resources query may use: enough for a program's start-up.
  static constexpr Resources kQueryResources{256 << 20, 0.5};
  static constexpr absl::Duration kQueryTimeout = absl::Seconds(10);

  const uint32_t ipv4_;
  std::unique_ptr<BinaryCache> cache_;
  const pb::CgroupBase cgroups_;  // where its processes' cgroups go (version 0: none)
  const security::Authorizer authz_;
  const std::shared_ptr<grpc::ChannelCredentials> channel_credentials_;  // to the master
  std::unique_ptr<NodeAgent> agent_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pb::NodeEvent> events_;          // guarded by mu_: for the Attach stream
  uint64_t attach_generation_ = 0;            // guarded by mu_: a newer Attach ends the older
  std::shared_ptr<pb::Master::Stub> master_;  // guarded by mu_; in-flight spawns share it
  std::map<Pid, int> stdin_;                  // guarded by mu_: roots' stdin pipes
  std::atomic<uint64_t> queries_{0};          // names the queries' cgroup leaves
};

// Parses "host:port" into an IPv4 address in host byte order ("localhost" and
// dotted quads; names are resolved).
absl::StatusOr<uint32_t> ResolveIpv4(const std::string& host_port);

}  // namespace constellation::daemon
