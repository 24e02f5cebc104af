#include "bench/compare/plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace compare {
namespace {

constexpr int64_t kMiB = 1 << 20;

// How many messages a measurement sends: up to `count` in the timed phase,
// cut short after `seconds` (common.h); `warmup` untimed before.
struct Counts {
  int64_t warmup, count;
  double seconds;
};

Counts LatencyCounts(bool quick, int64_t size) {
  if (quick) return {100, size > 4096 ? 500 : 1000, 0.5};
  return {1000, size > 4096 ? 5000 : 10000, 3};
}

Counts StreamCounts(bool quick, const std::string& test) {
  if (test == "throughput") return quick ? Counts{5, 200, 0.3} : Counts{20, 2000, 2};
  return quick ? Counts{1000, 50000, 0.3} : Counts{10000, 500000, 2};
}

struct Pin {
  std::string name;
  int a, b;
};

// Same core: both processes on the last allowed CPU; two cores: A on the first, B on the second.
std::vector<Pin> Pinnings(const std::vector<int>& cpus) {
  Pin same{"same core", cpus.back(), cpus.back()};
  Pin unpinned{"unpinned", -1, -1};
  if (cpus.size() < 2) return {same, unpinned};
  return {same, Pin{"two cores", cpus[0], cpus[1]}, unpinned};
}

std::vector<std::string> Flags(const std::string& test, int64_t size, const Pin& pin, const Counts& c) {
  return {"--test=" + test,
          absl::StrCat("--size=", size),
          absl::StrCat("--cpus=", pin.a, ",", pin.b),
          absl::StrCat("--warmup=", c.warmup),
          absl::StrCat("--count=", c.count),
          absl::StrCat("--seconds=", c.seconds)};
}

}  // namespace

const std::vector<System>& Systems() {
  static const std::vector<System> systems = {
      {"raw", "raw TCP", "bench/compare/compare_raw", "", "blocking send/read, the floor"},
      {"ours", "ours (channels)", "bench/compare/compare_ours", "",
       "sleeps in recv(); spins only while a big frame arrives (busy-polling is opt-in)"},
      {"zmq", "ZeroMQ PAIR", "bench/compare/compare_zmq", "", "I/O thread, sleeps in epoll"},
      {"grpc", "gRPC bidi stream", "bench/compare/compare_grpc", "", "completion-queue threads, sleeps in epoll"},
      {"mpi-tcp", "Open MPI, TCP", "bench/compare/compare_mpi", "tcp,self", "busy-polls (spins in MPI_Recv)"},
      {"mpi-shm", "Open MPI, shared memory", "bench/compare/compare_mpi", "vader,self",
       "busy-polls (spins in MPI_Recv)"},
      {"ours-async",
       "ours, coroutines",
       "bench/compare/compare_ours",
       "",
       "both sides co_await in block_on; the executor sleeps on a condition variable",
       {"--async=both"}},
      {"ours-async-echo",
       "ours, coroutine vs blocking echo",
       "bench/compare/compare_ours",
       "",
       "A co_awaits in block_on, B echoes with blocking recv/send",
       {"--async=a"}},
      {"ours-busy-poll",
       "ours, busy-polling 50 µs",
       "bench/compare/compare_ours",
       "",
       "spins up to 50 µs in recv (CONSTELLATION_BUSY_POLL_US=50), then sleeps in recv()",
       {"--busy_poll_us=50"}},
  };
  return systems;
}

namespace {

// Appends measurements to a plan; every one gets the same time limit.
class Planner {
 public:
  Planner(bool quick, std::vector<Measurement>* plan) : quick_(quick), plan_(plan) {}

  void Add(const System* s, const std::string& test, const std::string& pin, int64_t size,
           std::vector<std::string> args, const std::string& binary = "") {
    plan_->push_back(
        Measurement{s, test, pin, size, binary.empty() ? s->binary : binary, std::move(args), quick_ ? 30 : 120});
  }

  // Fan-in of 64 sender processes into one receiving process: blocking (a
  // thread per sender) for ours, one thread of coroutines for ours-async.
  // The forms alternate within a round.
  void FanIn(const System* ours, const System* async) {
    const std::string binary = "bench/compare/compare_fan_in";
    const int64_t n = 64, msgs = quick_ ? 200 : 3000;
    auto add = [&](const System* s, const std::string& test, const std::string& how) {
      if (s != nullptr) {
        Add(s, test, "unpinned", n, {"--fan_in=" + how, absl::StrCat("--n=", n), absl::StrCat("--msgs=", msgs)},
            binary);
      }
    };
    add(ours, "fan_in", "threads");
    add(async, "fan_in", "when_all");
    add(async, "fan_in_select", "select");
  }

  // Latency at every size, then throughput and rate, each under every pinning. The
  // variants (our coroutines) run latency at 8 B only, beside the others.
  void Transfers(const std::vector<const System*>& systems, const std::vector<const System*>& with_variants,
                 const std::vector<Pin>& pins) {
    for (int64_t size : {int64_t{8}, int64_t{1024}, 64 * int64_t{1024}}) {
      for (const Pin& pin : pins) {
        for (const System* s : size == 8 ? with_variants : systems) {
          std::vector<std::string> args = Flags("latency", size, pin, LatencyCounts(quick_, size));
          args.insert(args.end(), s->flags.begin(), s->flags.end());
          Add(s, "latency", pin.name, size, std::move(args));
        }
      }
    }
    for (const std::string test : {"throughput", "rate"}) {
      int64_t size = test == "throughput" ? kMiB : 8;
      for (const Pin& pin : pins) {
        for (const System* s : systems)
          Add(s, test, pin.name, size, Flags(test, size, pin, StreamCounts(quick_, test)));
      }
    }
  }

  // Start-up, unpinned. MPI_Comm_spawn once (a spawned process is in a job of its own, so the
  // transport is whatever MPI picks: vader and tcp are both allowed); a start costs ~60 ms there,
  // so fewer of them.
  void Starts(const std::vector<const System*>& systems) {
    Pin unpinned{"unpinned", -1, -1};
    for (const System* s : systems) {
      if (s->name == "mpi-tcp") continue;
      int64_t count = quick_ ? 5 : (s->name == "mpi-shm" ? 20 : 40);
      Add(s, "start", "unpinned", 8, Flags("start", 8, unpinned, Counts{quick_ ? 1 : 2, count, 60}));
    }
  }

  // Ours only: all-to-all among N processes (about the same number of messages for every N), memory.
  void Scale(const System* ours) {
    const std::string binary = "bench/compare/compare_scale";
    const int64_t total = quick_ ? 200000 : 2000000;
    for (int64_t n : quick_ ? std::vector<int64_t>{8} : std::vector<int64_t>{8, 32, 64}) {
      int64_t msgs = std::max<int64_t>(1, total / (n * (n - 1)));
      Add(ours, "all_to_all", "unpinned", n,
          {"--scale=all_to_all", absl::StrCat("--n=", n), absl::StrCat("--msgs=", msgs)}, binary);
    }
    int64_t k = quick_ ? 8 : 16;
    Add(ours, "memory", "unpinned", k, {"--scale=memory", absl::StrCat("--n=", k)}, binary);
    int64_t connections = quick_ ? 50 : 200;
    Add(ours, "connections", "unpinned", connections, {"--scale=connections", absl::StrCat("--n=", connections)},
        binary);
  }

 private:
  bool quick_;
  std::vector<Measurement>* plan_;
};

}  // namespace

std::vector<Measurement> MakeRound(const PlanOptions& options, const std::vector<int>& cpus, int round) {
  auto wanted = [&](const System& s) { return options.only.empty() || options.only.contains(s.name); };
  std::vector<const System*> systems, all;  // all: with the variants (systems with flags)
  for (const System& s : Systems()) {
    if (!wanted(s)) continue;
    all.push_back(&s);
    if (s.flags.empty()) systems.push_back(&s);
  }
  for (std::vector<const System*>* v : {&systems, &all}) {
    if (!v->empty()) std::rotate(v->begin(), v->begin() + round % v->size(), v->end());
  }
  std::vector<Measurement> plan;
  Planner planner(options.quick, &plan);
  planner.Transfers(systems, all, Pinnings(cpus));
  planner.Starts(systems);
  const System* ours = wanted(Systems()[1]) ? &Systems()[1] : nullptr;
  if (ours != nullptr) planner.Scale(ours);
  const System* ours_async = wanted(Systems()[6]) ? &Systems()[6] : nullptr;
  if (round % 2 == 0) {
    planner.FanIn(ours, ours_async);
  } else {
    planner.FanIn(nullptr, ours_async);
    planner.FanIn(ours, nullptr);
  }
  return plan;
}

std::string MpirunFlags(const Measurement& m) {
  std::string btl = m.test == "start" ? "vader,tcp,self" : m.system->btl;
  // --bind-to none: each rank pins itself (common.h) exactly as the other systems do.
  // pml ob1: the BTL named is the transport (Debian's Open MPI would otherwise pick UCX).
  // Same core: two ranks that spin on one core take turns only at the scheduler's tick (~8 ms a
  // round trip); Open MPI yields instead when it knows ranks outnumber cores, which it cannot see
  // here (it does not know our pinning), so it is told.
  std::string flags = "--allow-run-as-root --oversubscribe --bind-to none --mca pml ob1 --mca btl " + btl +
                      " --mca btl_tcp_if_include lo";
  if (m.pinning == "same core") flags += " --mca mpi_yield_when_idle 1";
  return flags;
}

std::vector<std::string> CommandLine(const Measurement& m, const std::string& binary_path, const std::string& out) {
  std::vector<std::string> argv;
  if (!m.system->btl.empty() && m.binary == m.system->binary) {
    argv = {"mpirun", "-np", m.test == "start" ? "1" : "2"};
    for (absl::string_view f : absl::StrSplit(MpirunFlags(m), ' ')) argv.emplace_back(f);
  }
  argv.push_back(binary_path);
  argv.insert(argv.end(), m.args.begin(), m.args.end());
  argv.push_back("--out=" + out);
  return argv;
}

}  // namespace compare
