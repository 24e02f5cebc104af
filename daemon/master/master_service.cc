#include "daemon/master/master_service.h"

#include "absl/strings/str_cat.h"
#include "daemon/grpc_util.h"
#include "daemon/log/log.h"
#include "daemon/master/join_request.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::FromProto;

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

grpc::Status MasterService::Watch(grpc::ServerContext* context, const pb::MasterWatchRequest* request,
                                  pb::GoneBatch* reply) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kNode}, "Master.Watch"); !denied.ok()) {
    return denied;
  }
  if (static_cast<size_t>(request->pids_size()) > JobManager::kMaxWatch) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("Master.Watch names ", request->pids_size(), " processes; at most ", JobManager::kMaxWatch));
  }
  std::vector<Pid> pids;
  pids.reserve(request->pids_size());
  for (const pb::Pid& p : request->pids()) {
    absl::StatusOr<Pid> pid = FromProto(p);
    if (!pid.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(pid.status().message()));
    pids.push_back(*pid);
  }
  absl::StatusOr<pb::GoneBatch> answer = jobs_->Watch(request->deployment(), pids);
  if (!answer.ok()) return ToGrpc(answer.status());
  *reply = *std::move(answer);
  return grpc::Status::OK;
}

grpc::Status MasterService::Join(grpc::ServerContext* context, const pb::JoinRequest* request, pb::Empty*) {
  absl::StatusOr<security::Identity> caller = authz_.Check(*context, {security::Role::kNode}, "Master.Join");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<JoinSpec> spec = ValidateJoin(*request);
  if (!spec.ok()) return ToGrpc(absl::InvalidArgumentError(absl::StrCat("Master.Join: ", spec.status().message())));
  absl::Status joined = nodes_->Join(spec->addr, spec->capacity, security::SpiffeUri(*caller));
  if (!joined.ok()) return ToGrpc(joined);
  LogInfo("join", "node %s joined (%s)", spec->addr, to_string(spec->capacity));
  return grpc::Status::OK;
}

grpc::Status MasterService::Leave(grpc::ServerContext* context, const pb::LeaveRequest* request, pb::Empty*) {
  absl::StatusOr<security::Identity> caller = authz_.Check(*context, {security::Role::kNode}, "Master.Leave");
  if (!caller.ok()) return ToGrpc(caller.status());
  if (absl::Status addr = ValidateNodeAddr(request->addr()); !addr.ok()) {
    return ToGrpc(absl::InvalidArgumentError(absl::StrCat("Master.Leave: ", addr.message())));
  }
  absl::Status left = nodes_->Leave(request->addr(), security::SpiffeUri(*caller));
  if (!left.ok()) return ToGrpc(left);
  LogInfo("join", "node %s left", request->addr());
  return grpc::Status::OK;
}

}  // namespace constellation::daemon::master
