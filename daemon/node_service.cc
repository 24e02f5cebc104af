#include "daemon/node_service.h"

#include "daemon/log/log.h"
#include "lib/process/cgroup.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "absl/strings/str_cat.h"
#include "daemon/grpc_util.h"
#include "grpcpp/grpcpp.h"
#include "lib/process/launch_description.h"
#include "lib/process/proto_convert.h"
#include "lib/process/resources_query.h"

namespace constellation::daemon {

using internal::CgroupLeaf;
using internal::CgroupSetup;
using internal::CreateCgroupBase;
using internal::FromProto;
using internal::kCgroupsEnv;
using internal::ReadCgroupLayout;
using internal::RemoveCgroupBase;
using internal::ToProto;

namespace {
// What Node.Kill may send (0 means SIGKILL).
const std::set<int> kSignals = {SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
}  // namespace

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
                                                                 NodeOptions options) {
  absl::StatusOr<std::unique_ptr<BinaryCache>> cache =
      BinaryCache::Create(std::move(cache_dir), options.max_binary_size);
  if (!cache.ok()) return cache.status();
  // Processes are enforced with cgroups under this daemon's own (see lib/process/cgroup.h).
  CgroupSetup cgroups =
      options.cgroups ? *std::move(options.cgroups) : CreateCgroupBase(ReadCgroupLayout(), getenv(kCgroupsEnv));
  if (absl::IsInvalidArgument(cgroups.why_not)) return cgroups.why_not;
  if (!cgroups.why_not.ok()) {
    LogWarning("node",
               "processes' resources are not enforced with cgroups (%s); memory is limited with "
               "setrlimit(RLIMIT_DATA) and CPU is not limited",
               cgroups.why_not.message());
  }
  process_internal::ZygoteMode zygote_mode = process_internal::ZygoteMode::kOn;
  if (options.zygotes) {
    zygote_mode = *options.zygotes;
  } else {
    absl::StatusOr<process_internal::ZygoteMode> mode =
        process_internal::ParseZygoteMode(getenv(process_internal::kZygoteEnv));
    if (!mode.ok()) return mode.status();
    zygote_mode = *mode;
  }
  std::unique_ptr<NodeService> service(new NodeService(ipv4, *std::move(cache), cgroups.base, credentials));
  service->zygotes_ = std::make_unique<NodeZygotes>(
      zygote_mode, cgroups.base,
      [self = service.get()](uint64_t deployment) { return self->agent_->Runs(deployment); });
  NodeService* self = service.get();
  metrics::Registry* registry = options.metrics;
  if (registry == nullptr) {
    service->own_registry_ = std::make_unique<metrics::Registry>();
    registry = service->own_registry_.get();
  }
  service->metrics_ = std::make_unique<metrics::NodeMetrics>(*registry);
  std::unique_ptr<Alarm> alarm = options.alarm ? std::move(options.alarm) : std::make_unique<ThreadAlarm>();
  service->grace_ =
      std::make_unique<MasterGrace>(options.master_grace, std::move(alarm), [self] { self->MasterGone(); });
  service->watches_ = std::make_unique<WatchRelay>(credentials.ChannelCredentials(), [self](const pb::GoneBatch& gone) {
    self->agent_->Gone(gone.deployment(), {gone.gone().begin(), gone.gone().end()});
  });
  service->link_ = std::make_unique<MasterLink>(NewIncarnation(), options.event_buffer,
                                                MasterLink::Hooks{[self, on_master = options.on_master] {
                                                                    self->grace_->Attached();
                                                                    if (on_master) on_master(true);
                                                                    // A master that comes back knows what ended
                                                                    // meanwhile.
                                                                    if (self->agent_) self->agent_->AskAgain();
                                                                  },
                                                                  [self, on_master = options.on_master] {
                                                                    self->grace_->Detached(self->draining_.load());
                                                                    if (on_master) on_master(false);
                                                                  }});
  absl::StatusOr<std::unique_ptr<NodeAgent>> agent = NodeAgent::Start(
      {[self](uint64_t deployment, const pb::ProcessEvent& event) {
         if (event.has_exit()) self->metrics_->Exited(event.exit());
         self->link_->Push(deployment, event);
       },
       [self](uint64_t deployment, const pb::SpawnRequest& request, NodeAgent::Reply reply) {
         self->relay_->Relay(deployment, request, std::move(reply));
       },
       [self](uint64_t deployment, const std::vector<Pid>& pids) { self->watches_->Ask(deployment, pids); }});
  if (!agent.ok()) return agent.status();
  service->agent_ = *std::move(agent);
  service->running_ = service->metrics_->CollectRunning([self] { return static_cast<int64_t>(self->agent_->live()); });
  service->zygote_count_ =
      service->metrics_->CollectZygotes([self] { return static_cast<int64_t>(self->zygotes_->size()); });
  return service;
}

NodeService::~NodeService() {
  running_.Reset();                    // no scrape reads the agent any more
  zygote_count_.Reset();               // nor the zygotes
  if (link_) link_->CheckQuiet();      // the server has shut down: no stream calls the hooks any more
  relay_->Shutdown();                  // its last replies go through the agent, still running
  if (watches_) watches_->Shutdown();  // so do its answers
  grace_.reset();                      // a grace expiring now finishes first
  if (zygotes_) zygotes_->EndAll();    // their spares' leaves go before the base
  if (agent_) agent_->KillAll();       // null when Create() failed to start it
  agent_.reset();
  link_.reset();  // aborts if an Attach stream is not done: the server must have shut down
  watches_.reset();
  relay_.reset();
  std::lock_guard<std::mutex> lock(mu_);  // orders the handlers' last writes before what is destroyed here
  for (const auto& [pid, fd] : stdin_) close(fd);
  stdin_.clear();
  RemoveCgroupBase(cgroups_);
}

grpc::Status NodeService::Admit(const grpc::ServerContext& context, const char* what) {
  // Every handler takes the lock once, so the destructor (which takes it
  // after the server has shut down) is ordered after the handlers, for TSan
  // too (the server's own wait is invisible to it).
  { std::lock_guard<std::mutex> lock(mu_); }
  return authz_.Require(context, {security::Role::kMaster}, what);
}

void NodeService::MasterGone() {
  agent_->KillAll();    // their exits are buffered for a master that comes later
  relay_->CancelAll();  // spawns waiting for a master: none is coming
  zygotes_->EndAll();   // nothing this node started outlives its master
}

grpc::Status NodeService::HasBinary(grpc::ServerContext* context, const pb::BinaryId* id, pb::HasBinaryReply* reply) {
  if (grpc::Status denied = Admit(*context, "Node.HasBinary"); !denied.ok()) {
    return denied;
  }
  reply->set_present(cache_->Has(*id));
  reply->set_boot_id(boot_id_);
  metrics_->CacheLookup(reply->present());
  return grpc::Status::OK;
}

grpc::Status NodeService::Adopt(grpc::ServerContext* context, const pb::AdoptRequest* request, pb::UploadReply*) {
  if (grpc::Status denied = Admit(*context, "Node.Adopt"); !denied.ok()) {
    return denied;
  }
  return ToGrpc(cache_->Adopt(request->id(), request->path()));
}

grpc::Status NodeService::Upload(grpc::ServerContext* context, grpc::ServerReader<pb::UploadChunk>* reader,
                                 pb::UploadReply*) {
  if (grpc::Status denied = Admit(*context, "Node.Upload"); !denied.ok()) {
    return denied;
  }
  pb::UploadChunk chunk;
  if (!reader->Read(&chunk)) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty upload");
  absl::StatusOr<std::unique_ptr<BinaryCache::Upload>> upload = cache_->Begin(chunk.id());
  if (!upload.ok()) return ToGrpc(upload.status());
  do {
    absl::Status appended = (*upload)->Append(chunk.data());
    if (!appended.ok()) return ToGrpc(appended);
    metrics_->Uploaded(chunk.data().size());
  } while (reader->Read(&chunk));
  // A master that gave up (its own upload failed) cancels: keep nothing.
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the master cancelled the upload");
  return ToGrpc((*upload)->Finish());
}

grpc::Status NodeService::RefuseIfDraining() const {
  if (!draining_.load()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "this node is draining (its daemon is stopping): no new process starts here");
}

grpc::Status NodeService::Launch(grpc::ServerContext* context, const pb::LaunchRequest* request,
                                 pb::LaunchReply* reply) {
  const auto arrived = std::chrono::steady_clock::now();  // for the spawn latency
  if (grpc::Status denied = Admit(*context, "Node.Launch"); !denied.ok()) {
    return denied;
  }
  if (grpc::Status draining = RefuseIfDraining(); !draining.ok()) return draining;
  absl::StatusOr<std::string> binary = cache_->VerifiedPath(request->binary());  // hashed: what it says it is
  if (!binary.ok()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("binary not uploaded to this node: ", binary.status().message()));
  }
  process_internal::LaunchWhat what;
  what.path = *binary;
  what.argv.assign(request->argv().begin(), request->argv().end());
  what.env.assign(request->env().begin(), request->env().end());
  if (request->has_parent()) what.parent = request->parent();
  what.resources = request->resources();
  if (request->has_call()) what.call = request->call();
  what.secret = request->secret();
  int stdin_pipe[2] = {-1, -1};
  if (request->stdin_pipe() && pipe2(stdin_pipe, O_CLOEXEC) == 0) what.stdin_fd = stdin_pipe[0];
  absl::StatusOr<process_internal::LaunchDescription> launch = process_internal::DescribeLaunch(
      {.ipv4 = ipv4_, .bridge = agent_->socket_name(), .cgroups = cgroups_, .fabric = true}, std::move(what));
  if (!launch.ok()) {
    for (int fd : stdin_pipe) {
      if (fd >= 0) close(fd);
    }
    return ToGrpc(launch.status());
  }
  const Pid pid = launch->port.pid;

  pb::RunningProcess running;
  running.set_deployment(request->deployment());
  *running.mutable_pid() = launch->info.self();
  if (request->has_parent()) *running.mutable_parent() = request->parent();
  *running.mutable_resources() = request->resources();
  link_->Launched(pid, std::move(running));
  agent_->Register(pid, request->deployment());
  std::optional<absl::StatusOr<pid_t>> forked = zygotes_->Launch(request->deployment(), *launch);
  absl::StatusOr<pid_t> os_pid = forked ? *std::move(forked) : process_internal::Launch(*launch);
  if (stdin_pipe[0] >= 0) close(stdin_pipe[0]);
  if (!os_pid.ok()) {
    agent_->Forget(pid);
    link_->Forget(pid);
    if (stdin_pipe[1] >= 0) close(stdin_pipe[1]);
    return ToGrpc(os_pid.status());
  }
  agent_->Started(pid, *os_pid);
  metrics_->Spawned(std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived).count(),
                    forked.has_value());
  if (!forked) zygotes_->Start(request->deployment(), *launch);  // its next spawned functions here fork
  if (stdin_pipe[1] >= 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stdin_[pid] = stdin_pipe[1];
  }
  *reply->mutable_pid() = ToProto(pid);
  return grpc::Status::OK;
}

grpc::Status NodeService::WriteStdin(grpc::ServerContext* context, const pb::StdinChunk* chunk, pb::Empty*) {
  if (grpc::Status denied = Admit(*context, "Node.WriteStdin"); !denied.ok()) {
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
  if (grpc::Status denied = Admit(*context, "Node.Kill"); !denied.ok()) {
    return denied;
  }
  int signal = request->signal() == 0 ? SIGKILL : request->signal();
  if (!kSignals.contains(signal)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("signal ", request->signal(),
                                     " is not one a node sends (0 or SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGQUIT, "
                                     "SIGUSR1, SIGUSR2)"));
  }
  std::vector<Pid> pids;
  for (const pb::Pid& p : request->pids()) {
    absl::StatusOr<Pid> pid = FromProto(p);
    if (!pid.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(pid.status().message()));
    pids.push_back(*pid);
  }
  agent_->Signal(request->deployment(), pids, signal);
  // The whole deployment killed, as the master also does once it ended: its zygote goes too.
  if (signal == SIGKILL && pids.empty() && request->deployment() != 0) zygotes_->End(request->deployment());
  return grpc::Status::OK;
}

grpc::Status NodeService::Ack(grpc::ServerContext* context, const pb::AckRequest* request, pb::Empty*) {
  if (grpc::Status denied = Admit(*context, "Node.Ack"); !denied.ok()) {
    return denied;
  }
  link_->Ack(*request);
  return grpc::Status::OK;
}

grpc::Status NodeService::Gone(grpc::ServerContext* context, const pb::GoneBatch* batch, pb::Empty*) {
  if (grpc::Status denied = Admit(*context, "Node.Gone"); !denied.ok()) {
    return denied;
  }
  if (batch->gone_size() > GoneTable::kMaxPidsPerPacket) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("Node.Gone carries ", batch->gone_size(), " verdicts; at most ", GoneTable::kMaxPidsPerPacket));
  }
  std::vector<pb::ProcessGone> gone;
  for (const pb::ProcessGone& g : batch->gone()) {
    if (!FromProto(g.pid()).ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Node.Gone: a bad pid");
    gone.push_back(g);
  }
  agent_->Gone(batch->deployment(), std::move(gone));
  return grpc::Status::OK;
}

grpc::Status NodeService::QueryResources(grpc::ServerContext* context, const pb::ResourcesQuery* query,
                                         pb::Resources* reply) {
  if (grpc::Status denied = Admit(*context, "Node.QueryResources"); !denied.ok()) {
    return denied;
  }
  if (grpc::Status draining = RefuseIfDraining(); !draining.ok()) return draining;
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

grpc::ServerWriteReactor<pb::NodeEvent>* NodeService::Attach(grpc::CallbackServerContext* context,
                                                             const pb::AttachRequest* request) {
  // Authorizer::Require takes the synchronous API's context; its decision alone here.
  if (!authz_.insecure()) {
    absl::StatusOr<security::Identity> caller = security::Authorize(
        security::PeerIdentity(context->auth_context().get()), {security::Role::kMaster}, "Node.Attach");
    if (!caller.ok()) return MasterLink::Refuse(ToGrpc(caller.status()));
  }
  relay_->SetMaster(request->master_addr());
  watches_->SetMaster(request->master_addr());  // before Attach: its hook asks the master again
  return link_->Attach(*request);
}

}  // namespace constellation::daemon
