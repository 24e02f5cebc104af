#include "daemon/node_service.h"

#include "lib/process/cgroup.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "daemon/grpc_util.h"
#include "grpcpp/grpcpp.h"
#include "lib/process/data_port.h"
#include "lib/process/launch.h"
#include "lib/process/proto_convert.h"
#include "lib/process/resources_query.h"

namespace constellation::daemon {
absl::StatusOr<uint32_t> ResolveIpv4(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* result = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &result) != 0 || result == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve \"", host, "\" to an IPv4 address"));
  }
  uint32_t ip = ntohl(reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr.s_addr);
  freeaddrinfo(result);
  return ip;
}

absl::StatusOr<std::unique_ptr<NodeService>> NodeService::Create(uint32_t ipv4, std::string cache_dir,
                                                                 const security::Credentials& credentials,
                                                                 uint64_t max_binary_size,
                                                                 std::optional<CgroupSetup> made) {
  absl::StatusOr<std::unique_ptr<BinaryCache>> cache = BinaryCache::Create(std::move(cache_dir), max_binary_size);
  if (!cache.ok()) return cache.status();
  // Processes are enforced with cgroups under this daemon's own (see lib/process/cgroup.h).
  CgroupSetup cgroups = made ? *std::move(made) : CreateCgroupBase(ReadCgroupLayout(), getenv(kCgroupsEnv));
  if (absl::IsInvalidArgument(cgroups.why_not)) return cgroups.why_not;
  if (!cgroups.why_not.ok()) {
    fprintf(stderr,
            "constellation node: warning: processes' resources are not enforced with cgroups (%s); memory is "
            "limited with setrlimit(RLIMIT_DATA) and CPU is not limited\n",
            std::string(cgroups.why_not.message()).c_str());
  }
  std::unique_ptr<NodeService> service(new NodeService(ipv4, *std::move(cache), cgroups.base, credentials));
  NodeService* self = service.get();
  absl::StatusOr<std::unique_ptr<NodeAgent>> agent = NodeAgent::Start(
      {[self](uint64_t deployment, const pb::ProcessEvent& event) { self->OnEvent(deployment, event); },
       [self](uint64_t deployment, const pb::SpawnRequest& request, NodeAgent::Reply reply) {
         self->OnSpawn(deployment, request, std::move(reply));
       }});
  if (!agent.ok()) return agent.status();
  service->agent_ = *std::move(agent);
  return service;
}

NodeService::~NodeService() {
  if (agent_) agent_->KillAll();  // null when Create() failed to start it
  agent_.reset();
  {
    // The server has shut down, so no handler runs any more; taking the lock
    // they used orders their last writes before what is destroyed here (the
    // server's own wait is invisible to TSan).
    std::lock_guard<std::mutex> lock(mu_);
    master_.reset();
  }
  RemoveCgroupBase(cgroups_);
}

grpc::Status NodeService::HasBinary(grpc::ServerContext* context, const pb::BinaryId* id, pb::HasBinaryReply* reply) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kMaster}, "Node.HasBinary"); !denied.ok()) {
    return denied;
  }
  reply->set_present(cache_->Has(*id));
  return grpc::Status::OK;
}

grpc::Status NodeService::Upload(grpc::ServerContext* context, grpc::ServerReader<pb::UploadChunk>* reader,
                                 pb::UploadReply*) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kMaster}, "Node.Upload"); !denied.ok()) {
    return denied;
  }
  pb::UploadChunk chunk;
  if (!reader->Read(&chunk)) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty upload");
  absl::StatusOr<std::unique_ptr<BinaryCache::Upload>> upload = cache_->Begin(chunk.id());
  if (!upload.ok()) return ToGrpc(upload.status());
  do {
    absl::Status appended = (*upload)->Append(chunk.data());
    if (!appended.ok()) return ToGrpc(appended);
  } while (reader->Read(&chunk));
  return ToGrpc((*upload)->Finish());
}

grpc::Status NodeService::Launch(grpc::ServerContext* context, const pb::LaunchRequest* request,
                                 pb::LaunchReply* reply) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kMaster}, "Node.Launch"); !denied.ok()) {
    return denied;
  }
  absl::StatusOr<std::string> binary = cache_->VerifiedPath(request->binary());  // hashed: what it says it is
  if (!binary.ok()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("binary not uploaded to this node: ", binary.status().message()));
  }
  absl::StatusOr<process_internal::DataPort> port = process_internal::BindDataPort(ipv4_);
  if (!port.ok()) return ToGrpc(port.status());
  pb::SpawnInfo info;
  *info.mutable_self() = ToProto(port->pid);
  if (request->has_parent()) *info.mutable_parent() = request->parent();
  *info.mutable_resources() = request->resources();
  if (request->has_call()) *info.mutable_call() = request->call();
  info.set_listen_fd(port->fd);
  info.set_bridge(agent_->socket_name());
  info.set_fabric(true);
  *info.mutable_cgroups() = cgroups_;
  info.set_secret(request->secret());

  process_internal::LaunchOptions options;
  options.path = *binary;
  options.argv.assign(request->argv().begin(), request->argv().end());
  if (options.argv.empty()) options.argv.push_back(options.path);
  options.env.assign(request->env().begin(), request->env().end());
  options.env.push_back("CONSTELLATION=fabric");
  int stdin_pipe[2] = {-1, -1};
  if (request->stdin_pipe() && pipe2(stdin_pipe, O_CLOEXEC) == 0) options.stdin_fd = stdin_pipe[0];

  agent_->Register(port->pid, request->deployment());
  absl::StatusOr<pid_t> os_pid = process_internal::LaunchWithHandOff(options, info);
  close(port->fd);
  if (stdin_pipe[0] >= 0) close(stdin_pipe[0]);
  if (!os_pid.ok()) {
    agent_->Forget(port->pid);
    if (stdin_pipe[1] >= 0) close(stdin_pipe[1]);
    return ToGrpc(os_pid.status());
  }
  agent_->Started(port->pid, *os_pid);
  if (stdin_pipe[1] >= 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stdin_[port->pid] = stdin_pipe[1];
  }
  *reply->mutable_pid() = ToProto(port->pid);
  return grpc::Status::OK;
}

grpc::Status NodeService::WriteStdin(grpc::ServerContext* context, const pb::StdinChunk* chunk, pb::Empty*) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kMaster}, "Node.WriteStdin"); !denied.ok()) {
    return denied;
  }
  absl::StatusOr<Pid> pid = FromProto(chunk->pid());
  if (!pid.ok()) return ToGrpc(pid.status());
  int fd = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stdin_.find(*pid);
    if (it == stdin_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no stdin for that process");
    fd = it->second;
    if (chunk->eof()) stdin_.erase(it);
  }
  std::string_view data = chunk->data();
  while (!data.empty()) {  // a reader that went away gives EPIPE (SIGPIPE is ignored)
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.remove_prefix(n);
  }
  if (chunk->eof()) close(fd);
  return grpc::Status::OK;
}

grpc::Status NodeService::Kill(grpc::ServerContext* context, const pb::KillRequest* request, pb::Empty*) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kMaster}, "Node.Kill"); !denied.ok()) {
    return denied;
  }
  agent_->KillDeployment(request->deployment());
  return grpc::Status::OK;
}

grpc::Status NodeService::QueryResources(grpc::ServerContext* context, const pb::ResourcesQuery* query,
                                         pb::Resources* reply) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kMaster}, "Node.QueryResources"); !denied.ok()) {
    return denied;
  }
  absl::StatusOr<std::string> binary = cache_->VerifiedPath(query->binary());
  if (!binary.ok()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("binary not uploaded to this node: ", binary.status().message()));
  }
  std::string name = absl::StrCat("query-", ++queries_);
  absl::StatusOr<CgroupLeaf> leaf = CgroupLeaf::Create(cgroups_, name, kQueryResources);
  if (!leaf.ok()) return ToGrpc(leaf.status());
  std::vector<std::string> procs;
  if (leaf->enabled()) procs.push_back(leaf->memory_dir() + "/cgroup.procs");
  if (leaf->enabled() && !leaf->cpu_dir().empty() && leaf->cpu_dir() != leaf->memory_dir()) {
    procs.push_back(leaf->cpu_dir() + "/cgroup.procs");
  }
  absl::StatusOr<Resources> asked =
      process_internal::QueryResources(cache_->PathOf(query->binary()), {query->argv().begin(), query->argv().end()},
                                       {query->env().begin(), query->env().end()}, kQueryTimeout, procs);
  leaf->Remove();
  if (!asked.ok()) return ToGrpc(asked.status());
  *reply = ToProto(*asked);
  return grpc::Status::OK;
}

grpc::Status NodeService::Attach(grpc::ServerContext* context, const pb::AttachRequest* request,
                                 grpc::ServerWriter<pb::NodeEvent>* writer) {
  if (grpc::Status denied = authz_.Require(*context, {security::Role::kMaster}, "Node.Attach"); !denied.ok()) {
    return denied;
  }
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = ++attach_generation_;
    master_ = pb::Master::NewStub(NodeChannel(request->master_addr(), channel_credentials_));
  }
  cv_.notify_all();
  if (!writer->Write(pb::NodeEvent())) return grpc::Status::OK;  // "here": the master counts this node in
  while (true) {
    std::unique_lock<std::mutex> lock(mu_);
    // Wake at least every 200 ms to notice a cancelled call.
    cv_.wait_for(lock, std::chrono::milliseconds(200),
                 [&] { return !events_.empty() || generation != attach_generation_; });
    if (generation != attach_generation_) return grpc::Status::OK;  // a newer master connection
    if (context->IsCancelled()) break;
    if (events_.empty()) continue;
    pb::NodeEvent event = std::move(events_.front());
    events_.pop_front();
    lock.unlock();
    if (!writer->Write(event)) break;
  }
  // The master is gone: nothing this node started may outlive it.
  std::lock_guard<std::mutex> lock(mu_);
  if (generation == attach_generation_) {
    agent_->KillAll();
    master_.reset();
  }
  return grpc::Status::OK;
}

void NodeService::OnEvent(uint64_t deployment, const pb::ProcessEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pb::NodeEvent& out = events_.emplace_back();
    out.set_deployment(deployment);
    *out.mutable_event() = event;
  }
  cv_.notify_all();
}

void NodeService::OnSpawn(uint64_t deployment, const pb::SpawnRequest& request, NodeAgent::Reply reply) {
  std::shared_ptr<pb::Master::Stub> master;
  {
    std::lock_guard<std::mutex> lock(mu_);
    master = master_;
  }
  if (master == nullptr) {
    pb::SpawnReply failed;
    failed.set_id(request.id());
    failed.set_code(static_cast<int>(absl::StatusCode::kUnavailable));
    failed.set_message("this node has no master");
    reply(failed);
    return;
  }
  // The master may hold the call until capacity frees up: never block the agent's loop.
  std::thread([master, deployment, request, reply = std::move(reply)] {
    pb::MasterSpawnRequest call;
    call.set_deployment(deployment);
    *call.mutable_request() = request;
    grpc::ClientContext context;
    pb::SpawnReply answer;
    grpc::Status status = master->Spawn(&context, call, &answer);
    if (!status.ok()) {
      answer.set_code(status.error_code());
      answer.set_message(status.error_message());
    }
    answer.set_id(request.id());
    reply(answer);
  }).detach();
}

}  // namespace constellation::daemon
