// constellation: the daemon. Thin: parses arguments and wires the parts.
//
//   constellation <bind-addr>               a node
//   constellation <bind-addr> nodes.toml    the master (with the bridge)
//   constellation <bind-addr> --join=ADDR   a node that joins a running master
//   constellation ca ...                    the cluster CA (security/ca_command.h)
#include <signal.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/capacity.h"
#include "daemon/config.h"
#include "daemon/grpc_util.h"
#include "daemon/master/master.h"
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

constexpr char kVersion[] = "constellation 0.1.0";

constexpr char kUsage[] = R"(usage: constellation <bind-addr> [nodes.toml] [options]
       constellation ca init|issue|show ...     (constellation ca --help)

Runs a Constellation daemon.
  constellation 10.0.0.2:9999              a node: runs the processes the master places here
  constellation 10.0.0.1:9999 nodes.toml   the master: places processes on the nodes listed in
                                           nodes.toml and serves the job API (constellation.v1.Jobs)
                                           that cdeploy talks to, at the bridge_bind of its entry

options:
  --tls=DIR         this daemon's TLS bundle: ca.pem, cert.pem, key.pem from `constellation ca issue`
                    with --role=node (a node) or --role=master (the master) (default /etc/constellation/tls)
  --insecure        no TLS and no authentication: anyone who can reach the ports can run code here;
                    only for a private, trusted network (prints a warning)
  --cache-dir=DIR   where uploaded binaries are kept (default /var/tmp/constellation/<port>);
                    created 0700, refused if it exists with another owner or group/world write
  --max-binary-size=SIZE
                    the largest binary accepted for upload, e.g. "512 MiB" (default 4 GiB)
  --state-dir=DIR   the master's jobs and their logs (SQLite), kept across restarts
                    (default /var/lib/constellation); created 0700
  --event-buffer=SIZE
                    a node: memory for its processes' events until the master has stored them, e.g.
                    "64 MiB" (the default); when full, output is dropped (and the loss reported)
  --master-grace=DURATION
                    a node: how long it keeps its processes when its master goes away, for a master
                    that comes back, e.g. "60s" (the default), "500ms", "2m"; 0 kills them at once.
                    The master: how long, after it restarts, it waits for the nodes that ran its jobs
  --peer-timeout=DURATION
                    how long a peer's connection (master to node, node to master) may leave a
                    keepalive ping unanswered before it is taken as broken: a node then counts as
                    lost, a master as gone; e.g. "10s" (the default), at least 1s
  --run-as=USER     required when started as root: make the directories and the cgroup base, hand them
                    to USER, then run as USER (and so does everything it launches); the TLS
                    bundle is read before. --run-as=root keeps root: deployments run as root
  --join=ADDR       a node: join the master whose daemon listens at ADDR (not in its nodes.toml);
                    joins again by itself whenever the master comes back, leaves on SIGTERM
  --advertise=HOST:PORT
                    with --join: the address the master dials (needed when binding 0.0.0.0; a port of
                    0 means the one listened on); default: the address the node listens on
  --mem=SIZE        with --join: memory offered to processes, e.g. "8 GiB" (default: the cgroup's
                    memory limit, or the machine's memory)
  --cpu=N           with --join: cores offered (default: the CPUs this daemon may run on, lowered
                    to the cgroup's CPU quota, rounded down)
  --help            this text
  --version         the version

A bind address with port 0 takes a free port; the daemon prints the address it listens on.
)";

struct Args {
  security::TlsFlags tls;
  std::string bind;
  std::string nodes_toml;
  std::string cache_dir;
  uint64_t max_binary_size = kDefaultMaxBinarySize;
  std::string run_as;
  std::string state_dir = "/var/lib/constellation";
  uint64_t event_buffer = 64 * constellation::kMiB;
  absl::Duration master_grace = absl::Seconds(60);
  absl::Duration peer_timeout = absl::Seconds(10);
  std::string join;             // --join: the master's address
  std::string advertise;        // --advertise
  std::optional<uint64_t> mem;  // --mem
  std::optional<double> cpu;    // --cpu
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

int Usage(const std::string& error) {
  fprintf(stderr, "constellation: %s\n\n%s", error.c_str(), kUsage);
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

// Blocks until SIGINT or SIGTERM.
void WaitForTermination() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int signal = 0;
  sigwait(&set, &signal);
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
      fprintf(stderr, "constellation: %s\n", std::string(capacity.status().message()).c_str());
      return 1;
    }
    join_capacity = *capacity;
  }
  std::optional<ClusterConfig> config;
  if (!args.nodes_toml.empty()) {
    absl::StatusOr<ClusterConfig> loaded = LoadNodesToml(args.nodes_toml);
    if (!loaded.ok()) {
      fprintf(stderr, "constellation: %s\n", std::string(loaded.status().message()).c_str());
      return 1;
    }
    config = *std::move(loaded);
  }
  security::Role role = config ? security::Role::kMaster : security::Role::kNode;
  absl::StatusOr<security::Credentials> credentials =
      security::LoadForRole(args.tls, security::kDaemonDefaultBundle, {role}, "constellation");
  if (!credentials.ok()) {
    fprintf(stderr, "constellation: %s\n", std::string(credentials.status().message()).c_str());
    return 1;
  }
  if (credentials->insecure()) fprintf(stderr, "%s\n", security::InsecureWarning("constellation").c_str());
  std::string port = args.bind.substr(args.bind.rfind(':') + 1);
  std::string cache_dir = args.cache_dir.empty() ? "/var/tmp/constellation/" + port : args.cache_dir;

  // Deployments never run as root unless the operator says so.
  if (geteuid() == 0 && args.run_as.empty()) {
    fprintf(stderr,
            "constellation: started as root without --run-as: every deployment would run as root. Pass "
            "--run-as=USER (an unprivileged user that runs the processes; docs/security.md), or --run-as=root to "
            "accept that\n");
    return 1;
  }
  if (args.run_as == "root" && geteuid() != 0) return Usage("--run-as=root needs the daemon to be started as root");

  std::optional<CgroupSetup> cgroups;
  if (!args.run_as.empty() && args.run_as != "root") {
    absl::StatusOr<CgroupSetup> made = BecomeUser(args.run_as, cache_dir, args.state_dir, config.has_value());
    if (!made.ok()) {
      fprintf(stderr, "constellation: %s\n", std::string(made.status().message()).c_str());
      return 1;
    }
    cgroups = *std::move(made);
  }
  SetPeerTimeout(args.peer_timeout);  // before any channel or server
  NodeOptions node_options;
  node_options.max_binary_size = args.max_binary_size;
  node_options.cgroups = std::move(cgroups);
  node_options.event_buffer = args.event_buffer;
  node_options.master_grace = args.master_grace;
  MasterPresence presence;
  node_options.on_master = [&presence](bool attached) { presence.Set(attached); };
  absl::StatusOr<std::unique_ptr<NodeService>> node =
      NodeService::Create(*ip, cache_dir + "/node", *credentials, std::move(node_options));
  if (!node.ok()) {
    fprintf(stderr, "constellation: %s\n", std::string(node.status().message()).c_str());
    return 1;
  }
  std::unique_ptr<master::Master> master;
  std::vector<grpc::Service*> services{node->get()};
  if (config) {
    absl::StatusOr<std::unique_ptr<BinaryCache>> cache =
        BinaryCache::Create(cache_dir + "/master", args.max_binary_size);
    if (!cache.ok()) {
      fprintf(stderr, "constellation: %s\n", std::string(cache.status().message()).c_str());
      return 1;
    }
    absl::StatusOr<std::unique_ptr<master::Master>> made =
        master::Master::Create(*config, *std::move(cache), *credentials, {args.state_dir, args.master_grace});
    if (!made.ok()) {
      fprintf(stderr, "constellation: %s\n", std::string(made.status().message()).c_str());
      return 1;
    }
    master = *std::move(made);
    services.push_back(master->master_service());
  }
  std::string listening;
  std::unique_ptr<grpc::Server> server = Serve(args.bind, services, *credentials, &listening);
  if (server == nullptr) {
    fprintf(stderr, "constellation: cannot listen on %s\n", args.bind.c_str());
    return 1;
  }
  printf("constellation: %s listening on %s\n", config ? "master" : "node", listening.c_str());
  // Per-service health, for probes that name the service they need.
  server->GetHealthCheckService()->SetServingStatus(pb::Node::service_full_name(), true);
  if (config) server->GetHealthCheckService()->SetServingStatus(pb::Master::service_full_name(), true);
  presence.ConnectHealth(server->GetHealthCheckService());
  std::unique_ptr<grpc::Server> bridge_server;
  if (config) {
    // The job API opens once the nodes are attached (or have had their chance).
    size_t up = master->Start(listening, absl::Seconds(10));
    if (up < config->nodes.size()) {
      fprintf(stderr, "constellation: %zu of %zu nodes reachable; carrying on, the rest join when they can\n", up,
              config->nodes.size());
    }
    std::string bridge_listening;
    bridge_server =
        Serve(*config->bridge_node().bridge_bind, {master->jobs_service()}, *credentials, &bridge_listening);
    if (bridge_server == nullptr) {
      fprintf(stderr, "constellation: cannot listen on %s\n", config->bridge_node().bridge_bind->c_str());
      return 1;
    }
    bridge_server->GetHealthCheckService()->SetServingStatus(v1::Jobs::service_full_name(), true);
    printf("constellation: bridge listening on %s\n", bridge_listening.c_str());
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
    joiner = std::make_unique<Joiner>(join_options,
                                      Joiner::GrpcCalls(args.join, credentials->ChannelCredentials(), absl::Seconds(3)),
                                      [&join_refused, master = args.join](const absl::Status& refused) {
                                        fprintf(stderr, "constellation: the master at %s refused the join: %s\n",
                                                master.c_str(), std::string(refused.message()).c_str());
                                        join_refused = true;
                                        kill(getpid(), SIGTERM);  // shuts the node down as a stop would
                                      });
    presence.Connect(joiner.get());
    joiner->Start();
  }
  fflush(stdout);
  sd_notify(0, "READY=1");
  WaitForTermination();
  sd_notify(0, "STOPPING=1");
  if (joiner) {
    // The master drops this node now, rather than after its peer timeout.
    absl::Status left = joiner->Leave();
    if (!left.ok()) fprintf(stderr, "constellation: leaving the master: %s\n", std::string(left.message()).c_str());
    presence.Connect(nullptr);
    joiner.reset();
  }
  for (grpc::Server* s : {server.get(), bridge_server.get()}) {
    if (s != nullptr) s->GetHealthCheckService()->Shutdown();  // NOT_SERVING while it drains
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
  if (argc >= 2 && std::string(argv[1]) == "ca") {
    return constellation::daemon::security::RunCaCommand({argv + 2, argv + argc});
  }
  Args args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version") {
      puts(kVersion);
      return 0;
    }
    if (arg.rfind("--cache-dir=", 0) == 0) {
      args.cache_dir = arg.substr(12);
    } else if (arg.rfind("--tls=", 0) == 0) {
      args.tls.bundle_dir = arg.substr(6);
    } else if (arg == "--insecure") {
      args.tls.insecure = true;
    } else if (arg.rfind("--state-dir=", 0) == 0) {
      args.state_dir = arg.substr(12);
      if (args.state_dir.empty()) return Usage("--state-dir needs a directory");
    } else if (arg.rfind("--run-as=", 0) == 0) {
      args.run_as = arg.substr(9);
    } else if (arg.rfind("--max-binary-size=", 0) == 0) {
      absl::StatusOr<uint64_t> size = constellation::parse_mem(arg.substr(18));
      if (!size.ok()) return Usage("--max-binary-size: " + std::string(size.status().message()));
      args.max_binary_size = *size;
    } else if (arg.rfind("--event-buffer=", 0) == 0) {
      absl::StatusOr<uint64_t> size = constellation::parse_mem(arg.substr(15));
      if (!size.ok()) return Usage("--event-buffer: " + std::string(size.status().message()));
      args.event_buffer = *size;
    } else if (arg.rfind("--master-grace=", 0) == 0) {
      if (!absl::ParseDuration(arg.substr(15), &args.master_grace) || args.master_grace < absl::ZeroDuration() ||
          args.master_grace == absl::InfiniteDuration()) {
        return Usage("--master-grace: expected a duration such as \"60s\", \"500ms\", \"2m\" or 0, got \"" +
                     arg.substr(15) + "\"");
      }
    } else if (arg.rfind("--peer-timeout=", 0) == 0) {
      if (!absl::ParseDuration(arg.substr(15), &args.peer_timeout) || args.peer_timeout < absl::Seconds(1) ||
          args.peer_timeout > absl::Hours(1)) {
        return Usage("--peer-timeout: expected a duration from 1s to 1h such as \"10s\", got \"" + arg.substr(15) +
                     "\"");
      }
    } else if (arg.rfind("--join=", 0) == 0) {
      args.join = arg.substr(7);
      if (absl::Status valid = ValidateHostPort(args.join); !valid.ok()) {
        return Usage("--join: " + std::string(valid.message()));
      }
    } else if (arg.rfind("--advertise=", 0) == 0) {
      args.advertise = arg.substr(12);
      if (absl::Status valid = ValidateHostPort(args.advertise); !valid.ok()) {
        return Usage("--advertise: " + std::string(valid.message()));
      }
    } else if (arg.rfind("--mem=", 0) == 0) {
      absl::StatusOr<uint64_t> mem = constellation::parse_mem(arg.substr(6));
      if (!mem.ok() || *mem == 0)
        return Usage("--mem: expected a size such as \"8 GiB\", got \"" + arg.substr(6) + "\"");
      args.mem = *mem;
    } else if (arg.rfind("--cpu=", 0) == 0) {
      double cpu = 0;
      if (!absl::SimpleAtod(arg.substr(6), &cpu) || !std::isfinite(cpu) || cpu < 0.01 || cpu > 4096) {
        return Usage("--cpu: expected a number of cores from 0.01 to 4096, got \"" + arg.substr(6) + "\"");
      }
      args.cpu = cpu;
    } else if (arg.rfind("-", 0) == 0) {
      return Usage("unknown option " + arg);
    } else {
      positional.push_back(arg);
    }
  }
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
  // Termination is waited for with sigwait; every thread inherits the mask.
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
