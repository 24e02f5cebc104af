// constellation: the daemon. Thin: parses arguments and wires the parts.
//
//   constellation <bind-addr>               a node
//   constellation <bind-addr> nodes.toml    the master (with the bridge)
//   constellation ca ...                    the cluster CA (security/ca_command.h)
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/capacity.h"
#include "daemon/config.h"
#include "daemon/flags.h"
#include "daemon/grpc_util.h"
#include "daemon/lifecycle.h"
#include "daemon/log/log.h"
#include "daemon/master/master.h"
#include "daemon/metrics/http_server.h"
#include "daemon/metrics/registry.h"
#include "daemon/node_join.h"
#include "daemon/node_service.h"
#include "daemon/run_as.h"
#include "daemon/security/ca_command.h"
#include "daemon/security/credentials.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "lib/core/resources.h"
#include "lib/process/cgroup.h"
#include "proto/cluster.grpc.pb.h"
#include "proto/jobs.grpc.pb.h"

namespace constellation::daemon {

using internal::CgroupSetup;
using internal::CreateCgroupBase;
using internal::kCgroupsEnv;
using internal::ReadCgroupLayout;
using internal::RemoveCgroupBase;

namespace {

struct Args {
  security::TlsFlags tls;
  std::string bind;
  std::string nodes_toml;
  std::string cache_dir;
  uint64_t max_binary_size = kDefaultMaxBinarySize;
  std::string run_as;
  std::string state_dir;
  uint64_t event_buffer = 0;
  absl::Duration master_grace;
  absl::Duration peer_timeout;
  absl::Duration drain_timeout;
  std::string join;             // --join: the master's address
  std::string advertise;        // --advertise
  std::optional<uint64_t> mem;  // --mem
  std::optional<double> cpu;    // --cpu
  std::string metrics;          // --metrics: empty for none
};

// What a joining node offers: --mem/--cpu, else what its cgroup and affinity allow.
absl::StatusOr<Resources> JoinCapacity(const Args& args) {
  Resources capacity;
  if (!args.mem || !args.cpu) {
    absl::StatusOr<Resources> detected = DetectCapacity("/", AffinityCpus());
    if (!detected.ok()) return detected.status();
    capacity = *detected;
  }
  if (args.mem) capacity.mem = *args.mem;
  if (args.cpu) capacity.cpu = *args.cpu;
  return capacity;
}

// The health service a readiness probe asks (docs/kubernetes.md): SERVING while a master is
// attached to this node (after a --join, or the master of a nodes.toml that lists it).
constexpr char kJoinedHealthService[] = "constellation.Joined";

// Carries the node's "a master is attached" to the joiner, which is made once the node listens,
// and to the health service, once the server exists.
struct MasterPresence {
  std::mutex mu;
  bool attached = false;
  Joiner* joiner = nullptr;
  grpc::HealthCheckServiceInterface* health = nullptr;
  void Set(bool now) {
    std::lock_guard<std::mutex> lock(mu);
    attached = now;
    if (joiner != nullptr) joiner->SetAttached(now);
    if (health != nullptr) health->SetServingStatus(kJoinedHealthService, now);
  }
  void Connect(Joiner* j) {
    std::lock_guard<std::mutex> lock(mu);
    joiner = j;
    if (j != nullptr) j->SetAttached(attached);
  }
  void ConnectHealth(grpc::HealthCheckServiceInterface* h) {
    std::lock_guard<std::mutex> lock(mu);
    health = h;
    if (h != nullptr) h->SetServingStatus(kJoinedHealthService, attached);
  }
};

// The first directory of systemd's $CACHE_DIRECTORY or $STATE_DIRECTORY
// (CacheDirectory=, StateDirectory=; ':'-separated when there are several), or "".
std::string SystemdDirectory(const char* variable) {
  const char* value = getenv(variable);
  if (value == nullptr) return "";
  std::string dirs = value;
  return dirs.substr(0, dirs.find(':'));
}

// The flags after ParseCommandLine(); directories left unset come from systemd.
Args ArgsFromFlags() {
  Args args;
  args.tls.bundle_dir = absl::GetFlag(FLAGS_tls);
  args.tls.insecure = absl::GetFlag(FLAGS_insecure);
  args.cache_dir = absl::GetFlag(FLAGS_cache_dir);
  if (args.cache_dir.empty()) args.cache_dir = SystemdDirectory("CACHE_DIRECTORY");
  args.max_binary_size = absl::GetFlag(FLAGS_max_binary_size).bytes;
  args.run_as = absl::GetFlag(FLAGS_run_as);
  args.state_dir = absl::GetFlag(FLAGS_state_dir).path;
  if (args.state_dir.empty()) args.state_dir = SystemdDirectory("STATE_DIRECTORY");
  if (args.state_dir.empty()) args.state_dir = "/var/lib/constellation";
  args.event_buffer = absl::GetFlag(FLAGS_event_buffer).bytes;
  args.master_grace = absl::GetFlag(FLAGS_master_grace).value;
  args.peer_timeout = absl::GetFlag(FLAGS_peer_timeout).value;
  args.join = absl::GetFlag(FLAGS_join).value;
  args.advertise = absl::GetFlag(FLAGS_advertise).value;
  args.mem = absl::GetFlag(FLAGS_mem).bytes;
  args.cpu = absl::GetFlag(FLAGS_cpu).cores;
  args.drain_timeout = absl::GetFlag(FLAGS_drain_timeout).value;
  args.metrics = absl::GetFlag(FLAGS_metrics).value;
  return args;
}

int Usage(const std::string& error) {
  absl::string_view usage = UsageText();
  fprintf(stderr, "constellation: %s\n\n%.*s", error.c_str(), static_cast<int>(usage.size()), usage.data());
  return 2;
}

// Starts a gRPC server on `bind` with the services; returns it and the
// address it listens on.
std::unique_ptr<grpc::Server> Serve(const std::string& bind, const std::vector<grpc::Service*>& services,
                                    const security::Credentials& credentials, std::string* listening) {
  grpc::ServerBuilder builder;
  ConfigureServer(builder);
  // grpc.health.v1.Health (SERVING while the daemon runs) and server reflection, for operators' tools.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  int port = 0;
  builder.AddListeningPort(bind, credentials.ServerCredentials(), &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) return nullptr;
  *listening = absl::StrCat(bind.substr(0, bind.rfind(':')), ":", port);
  return server;
}

// --run-as: prepares what the user must own as root, then becomes the user.
// Returns the node's cgroup base, made here while still root.
absl::StatusOr<CgroupSetup> BecomeUser(const std::string& name, const std::string& cache_dir,
                                       const std::string& state_dir, bool master) {
  absl::StatusOr<RunAsUser> user = LookUpUser(name);
  if (!user.ok()) return user.status();
  std::vector<std::string> dirs = {cache_dir, cache_dir + "/node"};
  if (master) {
    dirs.push_back(cache_dir + "/master");
    dirs.push_back(state_dir);
  }
  absl::Status status = PrepareDirsFor(*user, dirs);
  if (!status.ok()) return status;
  CgroupSetup cgroups = CreateCgroupBase(ReadCgroupLayout(), getenv(kCgroupsEnv));
  if (absl::IsInvalidArgument(cgroups.why_not)) return cgroups.why_not;
  status = PrepareCgroupsFor(*user, cgroups.base);
  if (status.ok()) status = DropTo(*user);
  if (!status.ok()) {
    RemoveCgroupBase(cgroups.base);
    return status;
  }
  return cgroups;
}

int Run(const Args& args) {
  std::string bind_host = args.bind.substr(0, args.bind.rfind(':'));
  bool wildcard = bind_host == "0.0.0.0" || bind_host.empty();
  if (!args.join.empty() && wildcard && args.advertise.empty()) {
    return Usage("--join with a bind address of 0.0.0.0 needs --advertise=HOST:PORT (the address the master dials)");
  }
  // Processes bind their ports on the node's address: the advertised one when the daemon binds every address.
  absl::StatusOr<uint32_t> ip = ResolveIpv4(wildcard && !args.advertise.empty() ? args.advertise : args.bind);
  if (!ip.ok()) return Usage(std::string(ip.status().message()));
  std::optional<Resources> join_capacity;
  if (!args.join.empty()) {
    absl::StatusOr<Resources> capacity = JoinCapacity(args);
    if (!capacity.ok()) {
      LogError("daemon", "%s", capacity.status().message());
      return 1;
    }
    join_capacity = *capacity;
  }
  std::optional<ClusterConfig> config;
  if (!args.nodes_toml.empty()) {
    absl::StatusOr<ClusterConfig> loaded = LoadNodesToml(args.nodes_toml);
    if (!loaded.ok()) {
      LogError("daemon", "%s", loaded.status().message());
      return 1;
    }
    config = *std::move(loaded);
  }
  security::Role role = config ? security::Role::kMaster : security::Role::kNode;
  absl::StatusOr<security::Credentials> credentials =
      security::LoadForRole(args.tls, security::kDaemonDefaultBundle, {role}, "constellation");
  if (!credentials.ok()) {
    LogError("daemon", "%s", credentials.status().message());
    return 1;
  }
  if (credentials->insecure()) LogWarning("daemon", "%s", security::InsecureWarning("constellation"));
  std::string port = args.bind.substr(args.bind.rfind(':') + 1);
  std::string cache_dir = args.cache_dir.empty() ? "/var/tmp/constellation/" + port : args.cache_dir;

  // Deployments never run as root unless the operator says so.
  if (geteuid() == 0 && args.run_as.empty()) {
    LogError("daemon",
             "started as root without --run-as: every deployment would run as root. Pass "
             "--run-as=USER (an unprivileged user that runs the processes; docs/security.md), or --run-as=root to "
             "accept that");
    return 1;
  }
  if (args.run_as == "root" && geteuid() != 0) return Usage("--run-as=root needs the daemon to be started as root");

  std::optional<CgroupSetup> cgroups;
  if (!args.run_as.empty() && args.run_as != "root") {
    absl::StatusOr<CgroupSetup> made = BecomeUser(args.run_as, cache_dir, args.state_dir, config.has_value());
    if (!made.ok()) {
      LogError("daemon", "%s", made.status().message());
      return 1;
    }
    cgroups = *std::move(made);
  }
  SetPeerTimeout(args.peer_timeout);  // before any channel or server
  metrics::Registry registry;         // outlives the node, the master and the metrics server
  NodeOptions node_options;
  node_options.metrics = &registry;
  node_options.max_binary_size = args.max_binary_size;
  node_options.cgroups = std::move(cgroups);
  node_options.event_buffer = args.event_buffer;
  node_options.master_grace = args.master_grace;
  MasterPresence presence;
  node_options.on_master = [&presence](bool attached) { presence.Set(attached); };
  absl::StatusOr<std::unique_ptr<NodeService>> node =
      NodeService::Create(*ip, cache_dir + "/node", *credentials, std::move(node_options));
  if (!node.ok()) {
    LogError("daemon", "%s", node.status().message());
    return 1;
  }
  std::unique_ptr<master::Master> master;
  std::vector<grpc::Service*> services{node->get()};
  if (config) {
    absl::StatusOr<std::unique_ptr<BinaryCache>> cache =
        BinaryCache::Create(cache_dir + "/master", args.max_binary_size);
    if (!cache.ok()) {
      LogError("daemon", "%s", cache.status().message());
      return 1;
    }
    absl::StatusOr<std::unique_ptr<master::Master>> made = master::Master::Create(
        *config, *std::move(cache), *credentials, {args.state_dir, args.master_grace, &registry});
    if (!made.ok()) {
      LogError("daemon", "%s", made.status().message());
      return 1;
    }
    master = *std::move(made);
    services.push_back(master->master_service());
  }
  std::string listening;
  std::unique_ptr<grpc::Server> server = Serve(args.bind, services, *credentials, &listening);
  if (server == nullptr) {
    LogError("daemon", "cannot listen on %s", args.bind);
    return 1;
  }
  printf("constellation: %s listening on %s\n", config ? "master" : "node", listening.c_str());
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!args.metrics.empty()) {
    absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> started =
        metrics::MetricsServer::Start(args.metrics, &registry);
    if (!started.ok()) {
      LogError("daemon", "%s", started.status().message());
      return 1;
    }
    metrics_server = *std::move(started);
    printf("constellation: metrics listening on %s\n", metrics_server->address().c_str());
  }
  // Per-service health, for probes that name the service they need.
  server->GetHealthCheckService()->SetServingStatus(pb::Node::service_full_name(), true);
  if (config) server->GetHealthCheckService()->SetServingStatus(pb::Master::service_full_name(), true);
  presence.ConnectHealth(server->GetHealthCheckService());
  std::unique_ptr<grpc::Server> bridge_server;
  std::string serving = "serving on " + listening;  // STATUS= names the ports
  if (config) {
    // The job API opens while the nodes attach: a job waits for a node to place it on.
    master->Start(listening, absl::ZeroDuration());
    std::string bridge_listening;
    bridge_server =
        Serve(*config->bridge_node().bridge_bind, {master->jobs_service()}, *credentials, &bridge_listening);
    if (bridge_server == nullptr) {
      LogError("daemon", "cannot listen on %s", *config->bridge_node().bridge_bind);
      return 1;
    }
    bridge_server->GetHealthCheckService()->SetServingStatus(v1::Jobs::service_full_name(), true);
    printf("constellation: bridge listening on %s\n", bridge_listening.c_str());
    absl::StrAppend(&serving, ", job API on ", bridge_listening);
  }
  std::atomic<bool> join_refused{false};
  std::unique_ptr<Joiner> joiner;
  if (!args.join.empty()) {
    Joiner::Options join_options;
    join_options.master_addr = args.join;
    join_options.self_addr = args.advertise.empty() ? listening : args.advertise;
    if (absl::EndsWith(join_options.self_addr, ":0")) {  // --advertise=HOST:0: the port listened on
      join_options.self_addr.resize(join_options.self_addr.size() - 1);
      absl::StrAppend(&join_options.self_addr, listening.substr(listening.rfind(':') + 1));
    }
    join_options.capacity = *join_capacity;
    joiner = std::make_unique<Joiner>(
        join_options, Joiner::GrpcCalls(args.join, credentials->ChannelCredentials(), absl::Seconds(3)),
        [&join_refused, master = args.join](const absl::Status& refused) {
          LogError("join", "the master at %s refused the join: %s", master, refused.message());
          join_refused = true;
          kill(getpid(), SIGTERM);  // shuts the node down as a stop would
        });
    presence.Connect(joiner.get());
    joiner->Start();
  }
  fflush(stdout);
  // Serving: the ports accept (BuildAndStart listened before it returned).
  NodeService* node_service = node->get();
  size_t attached = SIZE_MAX;  // the last count reported
  LifecycleHooks hooks;
  hooks.running = [node_service] { return node_service->agent().live(); };
  hooks.status = [&] {
    std::string status = absl::StrCat(serving, "; ", hooks.running(), " process(es) running here");
    if (!master) return status;
    size_t now = master->nodes_attached(), known = master->nodes_known();
    if (now != attached) {
      // On stdout too, for scripts and tests that wait for the cluster.
      printf("constellation: nodes attached: %zu of %zu\n", now, known);
      fflush(stdout);
      LogInfo("master", "%d of %d nodes attached", now, known);
      attached = now;
    }
    return absl::StrCat(status, "; ", now, " of ", known, " nodes attached");
  };
  hooks.drain = [&] {
    for (grpc::Server* s : {server.get(), bridge_server.get()}) {
      if (s != nullptr) s->GetHealthCheckService()->Shutdown();  // NOT_SERVING while it drains
    }
    node_service->Drain();
    if (master) master->Drain();
  };
  NotifyServing(hooks.status());
  RunUntilDrained(hooks, args.drain_timeout);
  if (joiner) {
    // Drained: the master drops this node now, rather than after its peer timeout.
    absl::Status left = joiner->Leave();
    if (!left.ok()) LogWarning("join", "leaving the master: %s", left.message());
    presence.Connect(nullptr);
    joiner.reset();
  }
  if (bridge_server) bridge_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  master.reset();
  node->reset();  // kills every process this node started
  return join_refused ? 1 : 0;
}

}  // namespace
}  // namespace constellation::daemon

int main(int argc, char** argv) {
  using namespace constellation::daemon;
  // One malloc arena, set before any thread starts. gRPC receives a binary's
  // 1 MiB upload chunks into buffers that its threads allocate and free in
  // turn; with an arena per thread, glibc gave each arena's freed top back to
  // the kernel and the next chunk faulted it in again (a third of the bridge's
  // CPU in an upload). With one, a 20 MiB upload to the bridge took 87 ms
  // instead of 150-177 (//bench:cluster_bench). Small allocations still come
  // from each thread's own cache (glibc's tcache), so threads rarely contend.
  mallopt(M_ARENA_MAX, 1);
  if (argc >= 2 && std::string(argv[1]) == "ca") {
    return constellation::daemon::security::RunCaCommand({argv + 2, argv + argc});
  }
  absl::StatusOr<CommandLine> line = ParseCommandLine({argv + 1, argv + argc});
  if (!line.ok()) return Usage(std::string(line.status().message()));
  if (line->action == CommandLine::Action::kHelp) {
    fwrite(UsageText().data(), 1, UsageText().size(), stdout);
    return 0;
  }
  if (line->action == CommandLine::Action::kVersion) {
    printf("%.*s\n", static_cast<int>(VersionText().size()), VersionText().data());
    return 0;
  }
  Args args = ArgsFromFlags();
  const std::vector<std::string>& positional = line->positional;
  ConfigureLog({absl::GetFlag(FLAGS_log_format), StderrIsJournal()});
  if (positional.empty() || positional.size() > 2) return Usage("expected <bind-addr> [nodes.toml]");
  args.bind = positional[0];
  absl::Status valid = ValidateHostPort(args.bind);
  if (!valid.ok()) return Usage(std::string(valid.message()));
  if (positional.size() == 2) args.nodes_toml = positional[1];
  if (!args.join.empty() && !args.nodes_toml.empty()) return Usage("--join is for nodes: a master has nodes.toml");
  if (args.join.empty() && (!args.advertise.empty() || args.mem || args.cpu)) {
    return Usage("--advertise, --mem and --cpu go with --join");
  }
  if (args.tls.insecure && !args.tls.bundle_dir.empty()) return Usage("--tls and --insecure exclude each other");
  // Termination is waited for with sigtimedwait (lifecycle.h); every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_IGN);  // launched processes are reaped by the kernel
  // Each process holds a connection to the node agent: use every fd allowed.
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  return Run(args);
}
