// Master::Deploy: the bridge's service for cdeploy. Split from master.cc for size.
#include <thread>

#include "absl/strings/str_cat.h"
#include "daemon/grpc_util.h"
#include "daemon/master.h"
#include "lib/net/handshake.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using DeployStream = grpc::ServerReaderWriter<pb::DeployEvent, pb::DeployRequest>;

absl::Status Master::ReceiveBinary(DeployStream* stream, const pb::BinaryId& id) {
  absl::StatusOr<std::unique_ptr<BinaryCache::Upload>> upload = cache_->Begin(id);
  if (!upload.ok()) return upload.status();
  pb::DeployEvent need;
  need.set_need_binary(true);
  if (!stream->Write(need)) return absl::CancelledError("cdeploy went away");
  uint64_t received = 0;
  pb::DeployRequest request;
  while (received < id.size()) {
    if (!stream->Read(&request) || !request.has_binary_chunk()) {
      return absl::InvalidArgumentError(
          absl::StrCat("upload truncated: ", received, " of ", id.size(), " bytes; rejected"));
    }
    received += request.binary_chunk().size();
    absl::Status appended = (*upload)->Append(request.binary_chunk());
    if (!appended.ok()) return appended;
  }
  return (*upload)->Finish();
}

// What the root's init() asks for, so it is placed and accounted as what it
// is (it is enforced as that by its monitor). The master never runs uploaded
// code itself: a node runs the query in a small cgroup with a timeout
// (NodeService::QueryResources). A binary that cannot say gets the default
// Resources(), with a line on the master's stderr.
Resources Master::RootResources(const pb::DeployStart& start) {
  absl::StatusOr<Resources> asked = QueryOnANode(start);
  if (asked.ok()) return *asked;
  fprintf(stderr, "constellation master: placing the root with the default resources: %s\n",
          std::string(asked.status().message()).c_str());
  return Resources();
}

absl::StatusOr<Resources> Master::QueryOnANode(const pb::DeployStart& start) {
  std::string addr;
  std::shared_ptr<pb::Node::Stub> stub;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [node_addr, node] : nodes_) {
      if (!node.up) continue;
      addr = node_addr;
      stub = node.stub;
      if (node_addr == config_.bridge_node().fabric_addr) break;  // where the binary is needed first anyway
    }
  }
  if (stub == nullptr) return absl::UnavailableError("no node is up to ask the binary");
  absl::Status uploaded = EnsureBinary(addr, start.binary());
  if (!uploaded.ok()) return uploaded;
  pb::ResourcesQuery query;
  *query.mutable_binary() = start.binary();
  query.mutable_argv()->CopyFrom(start.argv());
  query.mutable_env()->CopyFrom(start.env());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  pb::Resources reply;
  grpc::Status status = stub->QueryResources(&context, query, &reply);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(reply);
}

grpc::Status Master::Deploy(grpc::ServerContext* context, DeployStream* stream, const security::Identity& owner) {
  pb::DeployRequest first;
  if (!stream->Read(&first) || !first.has_start()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a deployment starts with its binary's id");
  }
  const pb::DeployStart& start = first.start();
  absl::Status valid = ValidateBinaryId(start.binary());
  if (valid.ok() && !cache_->Has(start.binary())) valid = ReceiveBinary(stream, start.binary());
  if (!valid.ok()) {
    pb::DeployEvent error;
    error.set_error(std::string(valid.message()));
    stream->Write(error);
    return grpc::Status::OK;
  }

  uint64_t id;
  pb::LaunchRequest launch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_deployment_++;
    Deployment& deployment = deployments_[id];
    deployment.owner = owner;
    deployment.binary = start.binary();
    deployment.env.assign(start.env().begin(), start.env().end());
    deployment.secret = net::NewDeploymentSecret();
    launch.set_secret(deployment.secret);
  }
  *launch.mutable_binary() = start.binary();
  launch.mutable_argv()->CopyFrom(start.argv());
  launch.mutable_env()->CopyFrom(start.env());
  *launch.mutable_resources() = ToProto(RootResources(start));
  launch.set_stdin_pipe(true);
  std::string root_node;
  absl::StatusOr<Pid> root = PlaceAndLaunch(id, std::move(launch), /*wait=*/true, &root_node);
  if (!root.ok()) {
    pb::DeployEvent error;
    error.set_error(absl::StrCat("cannot start the program: ", root.status().message()));
    stream->Write(error);
    std::lock_guard<std::mutex> lock(mu_);
    deployments_.erase(id);
    return grpc::Status::OK;
  }
  std::shared_ptr<pb::Node::Stub> root_stub;
  {
    std::lock_guard<std::mutex> lock(mu_);
    AnnounceLocked(id, Pid(), *root);
    root_stub = nodes_[root_node].stub;
  }
  pb::DeployEvent started;
  started.set_started(true);
  stream->Write(started);

  // stdin: cdeploy -> the root process. The stream ending early means cdeploy is gone.
  std::thread stdin_thread([this, stream, id, root = *root, root_stub] {
    pb::DeployRequest request;
    bool eof_sent = false;
    while (stream->Read(&request)) {
      if (!request.has_stdin_data() && !request.has_stdin_eof()) continue;
      pb::StdinChunk chunk;
      *chunk.mutable_pid() = ToProto(root);
      chunk.set_data(request.stdin_data());
      chunk.set_eof(request.has_stdin_eof());
      eof_sent = eof_sent || chunk.eof();
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      pb::Empty empty;
      root_stub->WriteStdin(&context, chunk, &empty);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!eof_sent) deployments_[id].cancelled = true;  // half-close without EOF: cdeploy is gone
    cv_.notify_all();
  });

  // Events -> cdeploy, until the deployment is over or cdeploy goes away.
  bool finished = false;
  while (!finished) {
    std::deque<pb::DeployEvent> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      Deployment& d = deployments_[id];
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return !d.outbox.empty() || d.cancelled || stopping_; });
      batch.swap(d.outbox);
      if ((d.cancelled || context->IsCancelled() || stopping_) && batch.empty()) break;
    }
    for (const pb::DeployEvent& event : batch) {
      if (!stream->Write(event)) break;
      finished = finished || event.has_exit_code();
    }
  }
  if (!finished) KillDeployment(id);
  context->TryCancel();  // ends the stdin reader's Read
  stdin_thread.join();
  // Keep the books until its last process has exited, so its resources are
  // released as the kills take effect.
  std::lock_guard<std::mutex> lock(mu_);
  Deployment& d = deployments_[id];
  d.cancelled = d.cancelled || !finished;
  d.detached = true;
  if (d.done) deployments_.erase(id);
  cv_.notify_all();
  return grpc::Status::OK;
}

}  // namespace constellation::daemon
