// Channels against raw TCP, side by side in one run, between two processes on
// this machine (loopback):
//
//   1. round-trip latency of an 8-byte message (ping-pong), p50/p99/p99.9, with
//      both processes pinned to one core, to two different cores, and unpinned;
//   2. one-way throughput of 1 MiB messages (GB/s), with a final ack;
//   3. one-way rate of 8-byte messages (msgs/s), with a final ack; raw TCP writes
//      8 bytes per send() call (one syscall per message), and also in batches.
//
// Every figure is the median of --runs runs (default 3; min and max beside it).
// The table ends with the ratios to raw TCP and the targets of the speed issue.
//
//   bazel run -c opt //bench:channel_bench [-- --quick] [-- --runs=5]
//   ... -- --only="latency/two cores"   (measurements whose "test/pinning/kind" contains it;
//                                        tests latency|throughput|rate, pinnings "same core"|
//                                        "two cores"|unpinned, kinds ours|"raw TCP"|"raw TCP batched")
//
// The driver (this binary without --root) runs itself under the bridge with
// CONSTELLATION_FORMAT=json, prints the root process's output and kills the
// whole process group if the run overruns its time limit. The root process
// runs every measurement: for each one it spawns a child and talks to it
// either through Sender/Receiver or through a plain blocking TCP socket
// (TCP_NODELAY, 127.0.0.1) it listens on, so both variants run between the
// same kind of processes (the raw variant leaves the data plane idle).
// Pinning sets the affinity of every thread of a process (the data plane's
// loop thread included), with sched_setaffinity per /proc/self/task entry.
//
// Same core: both processes on the last allowed CPU; two cores: the root on the
// first, the child on the second. --quick: fewer messages (about 15 s).
//
// Diagnostics: over the timed phase both processes count, with
// getrusage(RUSAGE_SELF), their voluntary context switches ("wake": a thread
// blocked and was woken), involuntary ones ("pre": preempted) and CPU time;
// the table prints them per message (per round trip for the latency test),
// both processes summed.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "bench/channel_bench_support.h"
#include "constellation/constellation.h"

namespace {
using namespace channel_bench;

// ---------------------------------------------------------------------------
// The child side of a measurement (runs in the spawned process).

void ChildMain(Pid parent, Job job) {
  if (!PinProcess(static_cast<int>(job.child_cpu))) Die("child: cannot set the CPU affinity");
  std::unique_ptr<Link> link;
  if (job.kind == kOurs) {
    link = std::make_unique<OursLink>(parent, job.test, /*parent=*/false);
  } else {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(job.port));
    SetSocketOptions(fd);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Die(std::string("child: connect: ") + std::strerror(errno));
    }
    link = std::make_unique<RawLink>(fd);
  }
  Usage start, end;
  if (job.test == kLatency) {
    for (int64_t i = 0; i < job.warmup + job.count; ++i) {
      if (i == job.warmup) start = GetUsage();
      link->SendWord(link->RecvWord());
    }
    end = GetUsage();
  } else {
    link->RecvStream(job, job.warmup);
    link->SendWord(1);
    start = GetUsage();
    link->RecvStream(job, job.count);
    end = GetUsage();
    link->SendWord(2);
  }
  Usage used = end - start;
  link->SendWord(used.voluntary);
  link->SendWord(used.involuntary);
  link->SendWord(used.cpu_ns);
}

// ---------------------------------------------------------------------------
// The root side of a measurement.

struct Result {
  std::vector<double> rtt_us;  // latency: every timed round trip
  double seconds = 0;          // throughput and rate: the timed phase, until the ack
  Usage parent, child;
};

Result RunJob(Job job, int root_cpu) {
  int listen_fd = -1;
  if (job.kind != kOurs) {
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(listen_fd, 4) != 0 ||
        getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      Die(std::string("listen: ") + std::strerror(errno));
    }
    job.port = ntohs(addr.sin_port);
  }
  // Spawned while this process is unpinned: the child (and its monitor) start with every CPU.
  // A whole core each (resources are enforced, docs/resources.md): a CPU quota never throttles the pair.
  absl::StatusOr<Pid> child =
      constellation::spawn(constellation::Resources{512 * constellation::kMiB, 1.0}, ChildMain, job);
  if (!child.ok()) Die("spawn: " + child.status().ToString());
  if (!PinProcess(root_cpu)) Die("cannot set the CPU affinity");

  std::unique_ptr<Link> link;
  OursLink* ours = nullptr;
  if (job.kind == kOurs) {
    ours = new OursLink(*child, job.test, /*parent=*/true);
    link.reset(ours);
  } else {
    pollfd p{listen_fd, POLLIN, 0};
    if (poll(&p, 1, kStepTimeoutSeconds * 1000) != 1) Die("the child did not connect");
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) Die(std::string("accept: ") + std::strerror(errno));
    close(listen_fd);
    SetSocketOptions(fd);
    link = std::make_unique<RawLink>(fd);
  }

  Result result;
  if (job.test == kLatency) {
    for (int64_t i = 0; i < job.warmup; ++i) {
      link->SendWord(i);
      if (link->RecvWord() != static_cast<uint64_t>(i)) Die("ping-pong out of order");
    }
    result.rtt_us.reserve(job.count);
    Usage start = GetUsage();
    for (int64_t i = 0; i < job.count; ++i) {
      int64_t t0 = NowNs();
      link->SendWord(i);
      uint64_t v = link->RecvWord();
      int64_t t1 = NowNs();
      if (v != static_cast<uint64_t>(i)) Die("ping-pong out of order");
      result.rtt_us.push_back((t1 - t0) / 1e3);
    }
    result.parent = GetUsage() - start;
  } else {
    link->SendStream(job, job.warmup);
    if (link->RecvWord() != 1) Die("bad ack");
    Usage start = GetUsage();
    int64_t t0 = NowNs();
    link->SendStream(job, job.count);
    if (link->RecvWord() != 2) Die("bad ack");
    result.seconds = (NowNs() - t0) / 1e9;
    result.parent = GetUsage() - start;
  }
  result.child.voluntary = static_cast<int64_t>(link->RecvWord());
  result.child.involuntary = static_cast<int64_t>(link->RecvWord());
  result.child.cpu_ns = static_cast<int64_t>(link->RecvWord());
  PinProcess(-1);

  // The next measurement starts only once this child is gone.
  if (ours != nullptr) {
    ours->AwaitExit();
    link.reset();
  } else {
    link.reset();
    Receiver<uint64_t> watch(*child);
    while (true) {
      absl::StatusOr<uint64_t> v = watch.recv_for(kStepTimeout);
      if (absl::IsUnavailable(v.status())) break;
      if (!v.ok()) Die("waiting for the child's exit: " + v.status().ToString());
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let its monitor and the bridge settle
  return result;
}

// ---------------------------------------------------------------------------
// Statistics and the table.

using bench::Percentile;
using bench::Summarize;
using bench::Summary;

// Per-run figures by name, e.g. "lat/two cores/ours/p50".
std::map<std::string, std::vector<double>> g_figures;

void Record(const std::string& key, double value) { g_figures[key].push_back(value); }
Summary Get(const std::string& key) { return Summarize(g_figures[key]); }

std::string Cell(const Summary& s, int precision) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%8.*f [%.*f..%.*f]", precision, s.median, precision, s.min, precision, s.max);
  return buf;
}

const char* Met(bool met) { return met ? "met" : "NOT MET"; }

struct Options {
  bool quick = false;
  int runs = 3;
  std::string only;  // run only the measurements whose "test/pinning/kind" contains this
};

const char* TestName(int64_t test) {
  switch (test) {
    case kLatency:
      return "latency";
    case kThroughput:
      return "throughput";
    default:
      return "rate";
  }
}

bool Has(const std::string& key) { return g_figures.contains(key); }

struct Plan {
  int64_t lat_warmup, lat_count;
  int64_t tput_warmup, tput_count;
  int64_t rate_warmup, rate_count;
};

int RunRoot(const Options& options) {
  Plan plan = options.quick ? Plan{300, 3000, 10, 100, 10000, 100000} : Plan{2000, 20000, 50, 2000, 100000, 1000000};
  std::vector<int> cpus = AllowedCpus();
  if (cpus.empty()) Die("no CPU in the affinity mask");
  std::vector<int64_t> latency_pins = {kSameCore, kTwoCores, kUnpinned};
  std::vector<int64_t> stream_pins = {kUnpinned, kTwoCores};
  if (cpus.size() < 2) {
    latency_pins = {kSameCore, kUnpinned};
    stream_pins = {kUnpinned};
  }
  // Same core: the last allowed CPU for both. Two cores: the root on the first, the child on the second.
  auto cpu_of = [&](int64_t pin, bool root) -> int {
    if (pin == kSameCore) return cpus.back();
    if (pin == kTwoCores) return root ? cpus[0] : cpus[1];
    return -1;
  };
  auto run = [&](int64_t kind, int64_t test, int64_t pin, int64_t warmup, int64_t count) {
    std::string name = std::string(TestName(test)) + "/" + PinName(pin) + "/" + KindName(kind);
    if (!options.only.empty() && name.find(options.only) == std::string::npos) return;
    Job job;
    job.kind = kind;
    job.test = test;
    job.pin = pin;
    job.child_cpu = cpu_of(pin, false);
    job.warmup = warmup;
    job.count = count;
    Result r = RunJob(job, cpu_of(pin, true));
    std::string key = std::string(PinName(pin)) + "/" + KindName(kind);
    double wakeups = static_cast<double>(r.parent.voluntary + r.child.voluntary) / count;
    double preempts = static_cast<double>(r.parent.involuntary + r.child.involuntary) / count;
    double cpu_us = (r.parent.cpu_ns + r.child.cpu_ns) / 1e3 / count;
    if (test == kLatency) {
      Record("lat/" + key + "/p50", Percentile(r.rtt_us, 0.50));
      Record("lat/" + key + "/p99", Percentile(r.rtt_us, 0.99));
      Record("lat/" + key + "/p999", Percentile(r.rtt_us, 0.999));
      Record("lat/" + key + "/cs", wakeups);
      Record("lat/" + key + "/pre", preempts);
      Record("lat/" + key + "/cpu", cpu_us);
    } else if (test == kThroughput) {
      Record("tput/" + key + "/gbs", count * static_cast<double>(kBigMessage) / r.seconds / 1e9);
      Record("tput/" + key + "/cs", wakeups);
      Record("tput/" + key + "/pre", preempts);
      Record("tput/" + key + "/cpu", cpu_us);
    } else {
      Record("rate/" + key + "/mps", count / r.seconds / 1e6);
      Record("rate/" + key + "/cs", wakeups);
      Record("rate/" + key + "/pre", preempts);
      Record("rate/" + key + "/cpu", cpu_us);
    }
  };

  int64_t start = NowNs();
  for (int round = 0; round < options.runs; ++round) {
    // Alternate which side goes first so a drift in machine load hits both alike.
    bool ours_first = round % 2 == 1;
    auto pair = [&](std::vector<int64_t> raws, auto&& fn) {
      if (ours_first) fn(kOurs);
      for (int64_t kind : raws) fn(kind);
      if (!ours_first) fn(kOurs);
    };
    for (int64_t pin : latency_pins) {
      pair({kRaw}, [&](int64_t kind) { run(kind, kLatency, pin, plan.lat_warmup, plan.lat_count); });
    }
    for (int64_t pin : stream_pins) {
      pair({kRaw}, [&](int64_t kind) { run(kind, kThroughput, pin, plan.tput_warmup, plan.tput_count); });
      pair({kRaw, kRawBatched}, [&](int64_t kind) { run(kind, kRate, pin, plan.rate_warmup, plan.rate_count); });
    }
    std::fprintf(stderr, "channel_bench: run %d of %d done (%.1f s)\n", round + 1, options.runs,
                 (NowNs() - start) / 1e9);
  }

  std::printf(
      "Constellation channels vs raw TCP: two processes on 127.0.0.1, %zu CPUs, median of %d runs "
      "[min..max]%s\n",
      cpus.size(), options.runs, options.quick ? " (--quick)" : "");
  std::printf(
      "wake: voluntary context switches (a thread blocked, then was woken), pre: involuntary ones\n"
      "(preempted), cpu: user+system microseconds; per message (per round trip for latency), the two\n"
      "processes' timed phases summed.\n\n");

  std::printf("1. Round-trip latency, 8-byte message, %lld round trips per run (microseconds)\n",
              static_cast<long long>(plan.lat_count));
  std::printf("  %-10s %-8s %-26s %-26s %-26s %6s %6s %7s\n", "pinning", "", "p50", "p99", "p99.9", "wake", "pre",
              "cpu");
  for (int64_t pin : latency_pins) {
    for (int64_t kind : {kRaw, kOurs}) {
      std::string key = std::string("lat/") + PinName(pin) + "/" + KindName(kind);
      if (!Has(key + "/p50")) continue;
      std::printf("  %-10s %-8s %-26s %-26s %-26s %6.2f %6.2f %7.2f\n", kind == kRaw ? PinName(pin) : "",
                  KindName(kind), Cell(Get(key + "/p50"), 1).c_str(), Cell(Get(key + "/p99"), 1).c_str(),
                  Cell(Get(key + "/p999"), 1).c_str(), Get(key + "/cs").median, Get(key + "/pre").median,
                  Get(key + "/cpu").median);
    }
  }

  std::printf("\n2. One-way throughput, 1 MiB messages, %lld per run, until the receiver's ack (GB/s, 1e9 B/s)\n",
              static_cast<long long>(plan.tput_count));
  std::printf("  %-10s %-8s %-26s %6s %6s %7s\n", "pinning", "", "GB/s", "wake", "pre", "cpu");
  for (int64_t pin : stream_pins) {
    for (int64_t kind : {kRaw, kOurs}) {
      std::string key = std::string("tput/") + PinName(pin) + "/" + KindName(kind);
      if (!Has(key + "/gbs")) continue;
      std::printf("  %-10s %-8s %-26s %6.2f %6.2f %7.1f\n", kind == kRaw ? PinName(pin) : "", KindName(kind),
                  Cell(Get(key + "/gbs"), 2).c_str(), Get(key + "/cs").median, Get(key + "/pre").median,
                  Get(key + "/cpu").median);
    }
  }

  std::printf("\n3. One-way rate, 8-byte messages, %lld per run, until the receiver's ack (millions of msgs/s)\n",
              static_cast<long long>(plan.rate_count));
  std::printf("  %-10s %-22s %-26s %6s %6s %7s\n", "pinning", "", "M msgs/s", "wake", "pre", "cpu");
  for (int64_t pin : stream_pins) {
    for (int64_t kind : {kRaw, kRawBatched, kOurs}) {
      std::string key = std::string("rate/") + PinName(pin) + "/" + KindName(kind);
      if (!Has(key + "/mps")) continue;
      const char* name = kind == kRaw ? "raw TCP (1 send/msg)" : kind == kRawBatched ? "raw TCP (512/send)" : "ours";
      std::printf("  %-10s %-22s %-26s %6.3f %6.3f %7.3f\n", kind == kRaw ? PinName(pin) : "", name,
                  Cell(Get(key + "/mps"), 3).c_str(), Get(key + "/cs").median, Get(key + "/pre").median,
                  Get(key + "/cpu").median);
    }
  }

  std::printf("\nTargets (issue \"Speed\"), from the medians:\n");
  for (int64_t pin : latency_pins) {
    std::string base = std::string("lat/") + PinName(pin) + "/";
    if (!Has(base + "ours/p50") || !Has(base + "raw TCP/p50")) continue;
    double ratio50 = Get(base + "ours/p50").median / Get(base + "raw TCP/p50").median;
    double ratio99 = Get(base + "ours/p99").median / Get(base + "raw TCP/p99").median;
    std::printf("  latency p50, %-9s  ours/raw %5.2fx  (target <= 1.5x)  %-7s   [p99 ratio %.2fx]\n", PinName(pin),
                ratio50, Met(ratio50 <= 1.5), ratio99);
  }
  for (int64_t pin : stream_pins) {
    std::string base = std::string("tput/") + PinName(pin) + "/";
    if (!Has(base + "ours/gbs") || !Has(base + "raw TCP/gbs")) continue;
    double ratio = Get(base + "ours/gbs").median / Get(base + "raw TCP/gbs").median;
    std::printf("  throughput 1 MiB, %-9s  ours/raw %5.0f%%  (target >= 80%%)  %s\n", PinName(pin), ratio * 100,
                Met(ratio >= 0.8));
  }
  for (int64_t pin : stream_pins) {
    std::string base = std::string("rate/") + PinName(pin) + "/";
    if (!Has(base + "ours/mps")) continue;
    double ours = Get(base + "ours/mps").median;
    std::printf(
        "  rate 8 B, %-9s  ours %.3f M msgs/s  (target >= 1 M/s)  %-7s   [%.2fx raw 1 send/msg, %.2fx raw "
        "batched]\n",
        PinName(pin), ours, Met(ours >= 1.0), ours / Get(base + "raw TCP/mps").median,
        ours / Get(base + "raw TCP batched/mps").median);
  }
  std::printf("\ntotal time %.1f s\n", (NowNs() - start) / 1e9);
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------------------
// The driver: runs the root under the bridge, prints its output, enforces a time limit.

pid_t g_group = 0;

void KillGroup(int) {
  if (g_group > 0) kill(-g_group, SIGKILL);
  _exit(130);
}

std::string Field(const std::string& line, const std::string& key) {
  std::string needle = "\"" + key + "\":";
  size_t start = line.find(needle);
  if (start == std::string::npos) return "";
  start += needle.size();
  if (start < line.size() && line[start] == '"') {
    ++start;
    return line.substr(start, line.find('"', start) - start);
  }
  size_t end = line.find_first_of(",}", start);
  return line.substr(start, end - start);
}

int RunDriver(int argc, char** argv, const Options& options) {
  std::vector<std::string> args = {argv[0], "--root"};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) Die("pipe");
  std::fflush(nullptr);
  pid_t child = fork();
  if (child < 0) Die("fork");
  if (child == 0) {
    setpgid(0, 0);  // its own process group: the time limit kills it whole
    dup2(out[1], STDOUT_FILENO);
    setenv("CONSTELLATION_FORMAT", "json", 1);
    execv("/proc/self/exe", cargs.data());
    _exit(127);
  }
  setpgid(child, child);
  g_group = child;
  signal(SIGINT, KillGroup);
  signal(SIGTERM, KillGroup);
  signal(SIGHUP, KillGroup);
  close(out[1]);
  int64_t limit_s = options.quick ? 120 : 180 + 240 * options.runs;
  int64_t deadline = NowNs() + limit_s * 1000000000;
  std::string buffer;
  bool timed_out = false;
  while (true) {
    int64_t left_ms = (deadline - NowNs()) / 1000000;
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char chunk[65536];
    ssize_t n = read(out[0], chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, n);
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      std::string event = Field(line, "event");
      if (event == "output") {
        std::string data;
        if (!absl::Base64Unescape(Field(line, "data"), &data) || data.empty()) continue;
        FILE* to = Field(line, "fd") == "2" ? stderr : stdout;
        std::fwrite(data.data(), 1, data.size(), to);
        std::fflush(to);
      } else if (event == "exit") {
        std::string code = Field(line, "code");
        if (code != "0") {
          std::fprintf(stderr, "channel_bench: process %s exited: %s\n", Field(line, "pid").c_str(),
                       code.empty() ? Field(line, "signal").c_str() : code.c_str());
        }
      }
    }
  }
  if (timed_out) {
    std::fprintf(stderr, "channel_bench: no result within %lld s: killing the run\n", static_cast<long long>(limit_s));
    kill(-child, SIGKILL);
  }
  close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (timed_out) {
    kill(-child, SIGKILL);  // anything of the group still there
    return 1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

int main(int argc, char** argv) {
  sched_getaffinity(0, sizeof(g_all_cpus), &g_all_cpus);
  Options options;
  bool root = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--root") {
      root = true;
    } else if (arg == "--quick") {
      options.quick = true;
    } else if (arg.rfind("--only=", 0) == 0) {
      options.only = arg.substr(7);
    } else if (arg.rfind("--runs=", 0) == 0 && absl::SimpleAtoi(arg.substr(7), &options.runs) && options.runs > 0 &&
               options.runs <= 50) {
    } else {
      std::fprintf(stderr, "usage: channel_bench [--quick] [--runs=N] [--only=SUBSTRING]   (unknown argument %s)\n",
                   argv[i]);
      return 2;
    }
  }
  if (root) {
    constellation::init(constellation::Resources{512 * constellation::kMiB, 1.0});
    return RunRoot(options);
  }
  signal(SIGPIPE, SIG_IGN);
  return RunDriver(argc, argv, options);
}
