// //bench:compare: us against the peers a user would pick instead, measured
// side by side in one run on this machine (docs/performance.md is its report).
//
//   bazel run -c opt //bench:compare [-- options]
//     --quick         a smoke run (one run, two-cores pinning, few messages; under a minute)
//     --runs=N        runs per figure (default 3; each figure is the median, with min and max)
//     --only=a,b      only these systems: raw, ours, zmq, grpc, mpi-tcp, mpi-shm, ours-async
//                     (our coroutines, both sides), ours-async-echo (coroutine vs blocking echo),
//                     ours-busy-poll (ours with set_busy_poll(50 µs) on both sides)
//     --json          one JSON object per row on stdout instead of the tables
//     --plot=PATH     also draw the latency plot (PNG, gnuplot) at PATH (relative to where bazel ran)
//
// For each system, tests (plan.cc) and pinning: round-trip latency of 8 B, 1 KiB and 64 KiB messages;
// one-way throughput of 1 MiB messages and rate of 8 B messages; time to start a process and get its
// first message back; for ours also all-to-all among 8, 32 and 64 processes, and memory; for our
// coroutines 8 B latency and a fan-in of 64 senders into one thread, beside the blocking forms. Every
// measurement is a fresh program (one per system: compare/<system>.cc; mpirun for MPI) that writes
// one JSON object to a file; the driver collects them, in rounds that rotate the order of systems.
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/bench_support.h"
#include "bench/compare/launch.h"
#include "bench/compare/plan.h"
#include "bench/compare/report.h"

namespace {

using namespace compare;

struct Options {
  PlanOptions plan;
  int runs = 3;
  bool json = false;
  std::string plot;
};

[[noreturn]] void Usage(const std::string& bad) {
  std::fprintf(stderr,
               "compare: bad argument %s\nusage: compare [--quick] [--runs=N] [--only=raw,ours,zmq,grpc,mpi-tcp,"
               "mpi-shm,ours-async,ours-async-echo,ours-busy-poll] [--json] [--plot=PATH]\n",
               bad.c_str());
  std::exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  bool runs_given = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--quick") {
      o.plan.quick = true;
    } else if (arg == "--json") {
      o.json = true;
    } else if (absl::ConsumePrefix(&arg, "--runs=")) {
      if (!absl::SimpleAtoi(arg, &o.runs) || o.runs < 1 || o.runs > 50) Usage(argv[i]);
      runs_given = true;
    } else if (absl::ConsumePrefix(&arg, "--plot=")) {
      o.plot = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--only=")) {
      for (absl::string_view name : absl::StrSplit(arg, ',', absl::SkipEmpty())) {
        bool known = false;
        for (const System& s : Systems()) known = known || s.name == name;
        if (!known) Usage(argv[i]);
        o.plan.only.insert(std::string(name));
      }
    } else {
      Usage(argv[i]);
    }
  }
  if (o.plan.quick && !runs_given) o.runs = 1;
  // bazel run starts us in the runfiles tree: a relative --plot means where the user ran bazel.
  const char* cwd = getenv("BUILD_WORKING_DIRECTORY");
  if (!o.plot.empty() && o.plot[0] != '/' && cwd != nullptr) o.plot = std::string(cwd) + "/" + o.plot;
  return o;
}

std::string FileText(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "?";
}

// The value of the first "key: value" line of a /proc file that starts with `key`.
std::string ProcField(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0 && line.find(':') != std::string::npos) {
      return std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
    }
  }
  return "?";
}

std::string Versions() {
  FILE* p = popen("dpkg-query -W -f='${Package} ${Version}, ' libzmq5 libopenmpi3 'libgrpc++1*' 2>/dev/null", "r");
  if (p == nullptr) return "?";
  char buf[512] = {};
  size_t n = fread(buf, 1, sizeof(buf) - 1, p);
  pclose(p);
  return std::string(absl::StripSuffix(std::string(buf, n), ", "));
}

// CPU seconds the whole machine has been busy, and elapsed over all CPUs
// (/proc/stat), and what this driver and its descendants have used (getrusage):
// the difference over the run is what other processes took from it.
struct CpuTimes {
  double machine_busy = 0, machine_total = 0, ours = 0;
};

CpuTimes ReadCpuTimes() {
  CpuTimes t;
  std::vector<std::string> fields = absl::StrSplit(FileText("/proc/stat").substr(0, 200), ' ', absl::SkipEmpty());
  double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (size_t i = 1; i < fields.size() && i <= 8 && fields[i].find('\n') == std::string::npos; ++i) {
    double v = 0;
    absl::SimpleAtod(fields[i], &v);
    t.machine_total += v / tick;
    if (i != 4 && i != 5) t.machine_busy += v / tick;  // not idle, not iowait
  }
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage ru{};
    getrusage(who, &ru);
    t.ours += ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  return t;
}

void PrintMachine(FILE* out, const Options& o, const std::string& load_before, const CpuTimes& before, double seconds) {
  utsname u{};
  uname(&u);
  std::fprintf(out, "## Results (//bench:compare%s, %d run%s per figure)\n\n", o.plan.quick ? " --quick" : "", o.runs,
               o.runs == 1 ? "" : "s");
  std::fprintf(out, "- machine: %s, %ld online CPUs (this run may use %zu), %s RAM\n",
               ProcField("/proc/cpuinfo", "model name").c_str(), sysconf(_SC_NPROCESSORS_ONLN),
               bench::AllowedCpus().size(), ProcField("/proc/meminfo", "MemTotal").c_str());
  std::fprintf(out, "- kernel: %s %s %s\n", u.sysname, u.release, u.machine);
  std::fprintf(out, "- peers: %s\n", Versions().c_str());
  CpuTimes after = ReadCpuTimes();
  double total = after.machine_total - before.machine_total;
  double busy = after.machine_busy - before.machine_busy, ours = after.ours - before.ours;
  std::fprintf(
      out,
      "- load average (1, 5, 15 min) before: %s, after: %s (raised by this benchmark itself, most by "
      "its all-to-all rows)\n- CPU time during the run: this benchmark %.0f%% of all CPUs, other processes %.0f%%\n",
      load_before.c_str(), FileText("/proc/loadavg").substr(0, 14).c_str(), 100 * ours / total,
      100 * std::max(0.0, busy - ours) / total);
  std::fprintf(out, "- wall time %.0f s. Cells: median over runs (min–max in parentheses).\n", seconds);
}

std::string Describe(const Measurement& m) {
  return absl::StrCat(m.system->name, " ", m.test, " ", m.pinning, " ",
                      m.test == "all_to_all" || m.test == "memory" ? absl::StrCat(m.size, " processes")
                      : m.test == "connections"                    ? absl::StrCat(m.size, " connections")
                                                                   : SizeName(m.size));
}

// Runs every round of measurements into `report`, each program writing its
// result into `dir`; returns how many failed (their log tails go to stderr).
int RunAll(const Options& options, const char* argv0, const std::string& dir, Report& report) {
  const std::vector<int> cpus = bench::AllowedCpus();
  const std::string out = dir + "/result.json", log = dir + "/log.txt";
  const size_t total = MakeRound(options.plan, cpus, 0).size() * options.runs;
  const int64_t start = bench::NowNs();
  std::map<std::string, std::string> binaries;  // runfile -> path
  int failures = 0, done = 0;
  for (int round = 0; round < options.runs; ++round) {
    for (const Measurement& m : MakeRound(options.plan, cpus, round)) {
      ++done;
      std::string& binary = binaries[m.binary];
      if (binary.empty()) binary = bench::Runfile(argv0, m.binary);
      if (binary.empty()) Usage("(cannot find " + m.binary + " in the runfiles: run with bazel run)");
      std::remove(out.c_str());
      absl::Status ran = Run(CommandLine(m, binary, out), m.timeout_s, log);
      absl::StatusOr<std::string> json = ran.ok() ? ReadFile(out) : ran;
      absl::Status added = json.ok() ? report.Add(m, *json) : json.status();
      if (!added.ok()) {
        ++failures;
        std::fprintf(stderr, "compare: %s failed: %s\n%s\n", Describe(m).c_str(), added.ToString().c_str(),
                     Tail(log, 12).c_str());
        continue;
      }
      std::fprintf(stderr, "compare: [%d/%zu, %.0f s] %s: %s\n", done, total, (bench::NowNs() - start) / 1e9,
                   Describe(m).c_str(), report.Brief(m).c_str());
    }
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  bench::InitCpus();
  Options options = ParseOptions(argc, argv);
  InstallSignalHandlers();
  if (bench::AllowedCpus().empty()) Usage("(no CPU in the affinity mask)");
  char dir_template[] = "/tmp/compare.XXXXXX";
  if (mkdtemp(dir_template) == nullptr) Usage("(cannot create a temporary directory)");
  const std::string dir = dir_template;

  const std::string load_before = FileText("/proc/loadavg").substr(0, 14);
  const CpuTimes cpu_before = ReadCpuTimes();
  const int64_t start = bench::NowNs();
  Report report;
  int failures = RunAll(options, argv[0], dir, report);
  const double seconds = (bench::NowNs() - start) / 1e9;
  if (options.json) {
    report.PrintJson(stdout);
    PrintMachine(stderr, options, load_before, cpu_before, seconds);
  } else {
    PrintMachine(stdout, options, load_before, cpu_before, seconds);
    report.PrintTables(stdout);
  }
  std::fflush(stdout);
  if (!options.plot.empty()) {
    absl::Status plotted = report.Plot(options.plot, dir);
    std::fprintf(stderr, "compare: plot %s: %s\n", options.plot.c_str(), plotted.ToString().c_str());
    if (!plotted.ok()) ++failures;
  }
  if (failures == 0) {
    std::filesystem::remove_all(dir);
  } else {
    std::fprintf(stderr, "compare: %d failure(s); the last log is in %s\n", failures, dir.c_str());
  }
  return failures == 0 ? 0 : 1;
}
