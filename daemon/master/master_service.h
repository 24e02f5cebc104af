#pragma once

// MasterService: the gRPC adapter of the Master service (proto/cluster.proto),
// which node daemons call on behalf of their processes: node certificates
// only (security/authz.h). The call blocks while the spawn waits for room.
// Watch answers which processes a node's processes watch are gone
// (JobManager::Watch). Join and Leave add and drop nodes started with
// --join (NodeSet::Join, Leave), after checking the request (join_request.h).

#include "daemon/master/job_manager.h"
#include "daemon/master/node_set.h"
#include "daemon/security/authz.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon::master {

class MasterService final : public pb::Master::Service {
 public:
  // `jobs` and `nodes` must outlive this.
  MasterService(JobManager* jobs, NodeSet* nodes, bool insecure) : jobs_(jobs), nodes_(nodes), authz_(insecure) {}
  grpc::Status Spawn(grpc::ServerContext* context, const pb::MasterSpawnRequest* request,
                     pb::SpawnReply* reply) override;
  grpc::Status Watch(grpc::ServerContext* context, const pb::MasterWatchRequest* request,
                     pb::GoneBatch* reply) override;
  grpc::Status Join(grpc::ServerContext* context, const pb::JoinRequest* request, pb::Empty*) override;
  grpc::Status Leave(grpc::ServerContext* context, const pb::LeaveRequest* request, pb::Empty*) override;

 private:
  JobManager* const jobs_;
  NodeSet* const nodes_;
  const security::Authorizer authz_;
};

}  // namespace constellation::daemon::master
