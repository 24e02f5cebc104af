#include "daemon/master/master_service.h"

#include "daemon/grpc_util.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::ToProto;

grpc::Status MasterService::Spawn(grpc::ServerContext* context, const pb::MasterSpawnRequest* request,
                                  pb::SpawnReply* reply) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kNode}, "Master.Spawn"); !denied.ok()) {
    return denied;
  }
  absl::StatusOr<Pid> child = jobs_->Spawn(request->deployment(), request->request());
  if (!child.ok()) return ToGrpc(child.status());
  *reply->mutable_child() = ToProto(*child);
  return grpc::Status::OK;
}

}  // namespace constellation::daemon::master
