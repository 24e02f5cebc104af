#pragma once

// MasterService: the gRPC adapter of the Master service (proto/cluster.proto),
// which node daemons call on behalf of their processes: node certificates
// only (security/authz.h). The call blocks while the spawn waits for room.
// Watch answers which processes a node's processes watch are gone
// (JobManager::Watch).

#include "daemon/master/job_manager.h"
#include "daemon/security/authz.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon::master {

class MasterService final : public pb::Master::Service {
 public:
  MasterService(JobManager* jobs, bool insecure) : jobs_(jobs), authz_(insecure) {}
  grpc::Status Spawn(grpc::ServerContext* context, const pb::MasterSpawnRequest* request,
                     pb::SpawnReply* reply) override;
  grpc::Status Watch(grpc::ServerContext* context, const pb::MasterWatchRequest* request,
                     pb::GoneBatch* reply) override;

 private:
  JobManager* const jobs_;
  const security::Authorizer authz_;
};

}  // namespace constellation::daemon::master
