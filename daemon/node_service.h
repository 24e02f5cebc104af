#pragma once

// NodeService: the gRPC service every node daemon runs (the master calls it).
// It caches binaries, launches processes through the same monitor as local
// mode (with CONSTELLATION=fabric), streams their events to the master over
// the Attach stream, and relays their spawn requests to the master. When the
// master's Attach stream ends, it kills everything it started.
//
// Thread-safe: gRPC calls it from its own threads.

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "daemon/binary_cache.h"
#include "daemon/node_agent.h"
#include "lib/process/cgroup.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

class NodeService final : public pb::Node::Service {
 public:
  // `ipv4` (host byte order) is where this node's processes bind their ports.
  // Binaries are cached in `cache_dir` (see BinaryCache for the checks).
  // `cgroups`, if given, is a base made already (--run-as makes it as root).
  static absl::StatusOr<std::unique_ptr<NodeService>> Create(uint32_t ipv4, std::string cache_dir,
                                                             uint64_t max_binary_size = kDefaultMaxBinarySize,
                                                             std::optional<CgroupSetup> cgroups = std::nullopt);
  ~NodeService() override;

  grpc::Status HasBinary(grpc::ServerContext*, const pb::BinaryId* id, pb::HasBinaryReply* reply) override;
  grpc::Status Upload(grpc::ServerContext*, grpc::ServerReader<pb::UploadChunk>* reader, pb::UploadReply*) override;
  grpc::Status Launch(grpc::ServerContext*, const pb::LaunchRequest* request, pb::LaunchReply* reply) override;
  grpc::Status WriteStdin(grpc::ServerContext*, const pb::StdinChunk* chunk, pb::Empty*) override;
  grpc::Status Kill(grpc::ServerContext*, const pb::KillRequest* request, pb::Empty*) override;
  grpc::Status Attach(grpc::ServerContext* context, const pb::AttachRequest* request,
                      grpc::ServerWriter<pb::NodeEvent>* writer) override;

 private:
  NodeService(uint32_t ipv4, std::unique_ptr<BinaryCache> cache, pb::CgroupBase cgroups)
      : ipv4_(ipv4), cache_(std::move(cache)), cgroups_(std::move(cgroups)) {}
  void OnEvent(uint64_t deployment, const pb::ProcessEvent& event);
  void OnSpawn(uint64_t deployment, const pb::SpawnRequest& request, NodeAgent::Reply reply);

  const uint32_t ipv4_;
  std::unique_ptr<BinaryCache> cache_;
  const pb::CgroupBase cgroups_;  // where its processes' cgroups go (version 0: none)
  std::unique_ptr<NodeAgent> agent_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pb::NodeEvent> events_;          // guarded by mu_: for the Attach stream
  uint64_t attach_generation_ = 0;            // guarded by mu_: a newer Attach ends the older
  std::shared_ptr<pb::Master::Stub> master_;  // guarded by mu_; in-flight spawns share it
  std::map<Pid, int> stdin_;                  // guarded by mu_: roots' stdin pipes
};

// Parses "host:port" into an IPv4 address in host byte order ("localhost" and
// dotted quads; names are resolved).
absl::StatusOr<uint32_t> ResolveIpv4(const std::string& host_port);

}  // namespace constellation::daemon
