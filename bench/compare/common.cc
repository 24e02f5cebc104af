#include "bench/compare/common.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/bench_support.h"

extern char** environ;

namespace compare {
namespace {

// Header flags (the top bits of a message's first 8 bytes; the rest is the sequence number).
constexpr uint64_t kLast = uint64_t{1} << 63;  // the last message of the test: B answers and stops
constexpr uint64_t kSync = uint64_t{1} << 62;  // end of a stream's warm-up: B acknowledges it
constexpr int64_t kMinSamples = 200;           // the time cap never cuts a timed phase shorter than this

void SendHeader(Endpoint& endpoint, size_t size, uint64_t header) {
  PutHeader(endpoint.Prepare(size), header);
  DieIf(endpoint.Send(size), "send");
}

uint64_t RecvHeader(Endpoint& endpoint, size_t size) {
  absl::StatusOr<std::string_view> message = endpoint.Recv(size);
  DieIf(message.status(), "recv");
  if (message->size() != size) Die(absl::StrCat("a message of ", message->size(), " bytes, expected ", size));
  return GetHeader(*message);
}

std::string Percentiles(std::vector<double> us) {
  return absl::StrFormat("\"n\":%d,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f", us.size(), bench::Percentile(us, 0.5),
                         bench::Percentile(us, 0.99), bench::Percentile(us, 0.999));
}

// Ping-pong: one message of args.size each way per round trip, A timing each.
void RunLatency(Endpoint& endpoint, const Args& args) {
  LatencyLoop loop(args);
  do {
    SendHeader(endpoint, args.size, loop.Start());
    loop.Finish(RecvHeader(endpoint, args.size));
  } while (!loop.done());
  loop.Write();
}

// One-way stream of args.size messages; the clock runs from the warm-up's
// acknowledgement to the acknowledgement of the last message.
void RunStream(Endpoint& endpoint, const Args& args) {
  for (int64_t i = 0; i < args.warmup; ++i) {
    SendHeader(endpoint, args.size, static_cast<uint64_t>(i) | (i + 1 == args.warmup ? kSync : 0));
  }
  if (args.warmup > 0) RecvHeader(endpoint, 8);
  int64_t t0 = bench::NowNs();
  int64_t deadline = t0 + static_cast<int64_t>(args.seconds * 1e9);
  int64_t sent = 0;
  while (true) {
    ++sent;
    // The clock is read every 64th message only: at 8 bytes a message it would show.
    bool last = sent >= args.count || (sent >= kMinSamples && sent % 64 == 0 && bench::NowNs() > deadline);
    SendHeader(endpoint, args.size, static_cast<uint64_t>(sent) | (last ? kLast : 0));
    if (last) break;
  }
  RecvHeader(endpoint, 8);
  double seconds = (bench::NowNs() - t0) / 1e9;
  WriteResult(args, absl::StrFormat("\"n\":%d,\"seconds\":%.6f,\"bytes\":%d", sent, seconds, sent * args.size));
}

}  // namespace

void PutHeader(char* p, uint64_t header) { std::memcpy(p, &header, sizeof(header)); }

uint64_t GetHeader(std::string_view message) {
  uint64_t header = 0;
  if (message.size() >= sizeof(header)) std::memcpy(&header, message.data(), sizeof(header));
  return header;
}

bool IsLast(uint64_t header) { return (header & kLast) != 0; }

int64_t CpuNs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto ns = [](const timeval& t) { return int64_t{t.tv_sec} * 1'000'000'000 + int64_t{t.tv_usec} * 1000; };
  return ns(usage.ru_utime) + ns(usage.ru_stime);
}

LatencyLoop::LatencyLoop(const Args& args) : args_(args) { rtt_us_.reserve(args.count); }

uint64_t LatencyLoop::Start() {
  if (i_ == args_.warmup) {
    deadline_ = bench::NowNs() + static_cast<int64_t>(args_.seconds * 1e9);
    cpu0_ns_ = CpuNs();
    wall0_ns_ = bench::NowNs();
  }
  int64_t timed = i_ - args_.warmup + 1;  // this round trip's number in the timed phase (1-based)
  last_ = timed >= args_.count || (timed >= kMinSamples && bench::NowNs() > deadline_);
  t0_ = bench::NowNs();
  return static_cast<uint64_t>(i_) | (last_ ? kLast : 0);
}

void LatencyLoop::Finish(uint64_t echo) {
  int64_t t1 = bench::NowNs();
  if ((echo & ~kLast) != static_cast<uint64_t>(i_)) Die("ping-pong out of order");
  if (i_ >= args_.warmup) rtt_us_.push_back((t1 - t0_) / 1e3);
  done_ = last_;
  ++i_;
}

void LatencyLoop::Write() const {
  // What the measuring process spent on the CPU (all its threads, user + sys)
  // per timed round trip, and as a share of the timed phase's wall time: what
  // busy-polling costs shows here.
  const double cpu_ns = static_cast<double>(CpuNs() - cpu0_ns_);
  const double wall_ns = static_cast<double>(bench::NowNs() - wall0_ns_);
  const double n = rtt_us_.empty() ? 1.0 : static_cast<double>(rtt_us_.size());
  WriteResult(args_, absl::StrFormat("%s,\"cpu_us_per_rt\":%.3f,\"cpu_share\":%.3f", Percentiles(rtt_us_),
                                     cpu_ns / n / 1e3, wall_ns > 0 ? cpu_ns / wall_ns : 0.0));
}

void Die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
  std::fflush(nullptr);
  std::exit(1);
}

void DieIf(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Die(what + ": " + status.ToString());
}

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    args.argv.push_back(arg);
    std::pair<std::string, std::string> kv = absl::StrSplit(arg, absl::MaxSplits('=', 1));
    const std::string& key = kv.first;
    const std::string& value = kv.second;
    bool ok = true;
    if (key == "--test") {
      if (value == "latency") {
        args.test = Test::kLatency;
      } else if (value == "throughput") {
        args.test = Test::kThroughput;
      } else if (value == "rate") {
        args.test = Test::kRate;
      } else if (value == "start") {
        args.test = Test::kStart;
      } else {
        ok = false;
      }
    } else if (key == "--size") {
      ok = absl::SimpleAtoi(value, &args.size) && args.size >= 8;
    } else if (key == "--cpus") {
      std::pair<std::string, std::string> ab = absl::StrSplit(value, absl::MaxSplits(',', 1));
      ok = absl::SimpleAtoi(ab.first, &args.cpu_a) && absl::SimpleAtoi(ab.second, &args.cpu_b);
    } else if (key == "--warmup") {
      ok = absl::SimpleAtoi(value, &args.warmup) && args.warmup >= 0;
    } else if (key == "--count") {
      ok = absl::SimpleAtoi(value, &args.count) && args.count > 0;
    } else if (key == "--seconds") {
      ok = absl::SimpleAtod(value, &args.seconds) && args.seconds > 0;
    } else if (key == "--out") {
      args.out = value;
    } else if (key == "--role") {
      args.role = value;
    } else if (key == "--peer") {
      args.peer = value;
    } else if (key.rfind("--", 0) == 0 && arg.find('=') != std::string::npos) {
      args.extra.push_back(arg);
    } else {
      ok = false;
    }
    if (!ok) return absl::InvalidArgumentError("bad argument " + arg);
  }
  return args;
}

Args Setup(int argc, char** argv) {
  bench::InitCpus();
  absl::StatusOr<Args> args = ParseArgs(argc, argv);
  DieIf(args.status(), "usage");
  int cpu = args->role == "a" ? args->cpu_a : args->cpu_b;
  if (!bench::PinProcess(cpu)) Die(absl::StrCat("cannot pin to CPU ", cpu));
  return *std::move(args);
}

void RunA(Endpoint& endpoint, const Args& args) {
  if (args.test == Test::kLatency) {
    RunLatency(endpoint, args);
  } else {
    RunStream(endpoint, args);
  }
}

void RunB(Endpoint& endpoint, const Args& args) {
  while (true) {
    uint64_t header = RecvHeader(endpoint, args.size);
    if (args.test == Test::kLatency) {
      SendHeader(endpoint, args.size, header);
    } else if ((header & (kSync | kLast)) != 0) {
      SendHeader(endpoint, 8, header);  // the acknowledgement
    }
    if ((header & kLast) != 0) return;
  }
}

void RunStarts(const Args& args, const std::function<absl::StatusOr<int64_t>()>& start_one) {
  std::vector<double> us;
  for (int64_t i = 0; i < args.warmup + args.count; ++i) {
    absl::StatusOr<int64_t> ns = start_one();
    DieIf(ns.status(), "start");
    if (i >= args.warmup) us.push_back(*ns / 1e3);
  }
  WriteResult(args, Percentiles(std::move(us)));
}

void WriteResult(const Args& args, const std::string& json_fields) {
  std::string line = "{" + json_fields + "}\n";
  FILE* f = args.out.empty() ? stdout : std::fopen(args.out.c_str(), "w");
  if (f == nullptr) Die("cannot write " + args.out + ": " + std::strerror(errno));
  std::fputs(line.c_str(), f);
  if (f != stdout) std::fclose(f);
}

std::string SelfPath() {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) Die("readlink /proc/self/exe");
  return std::string(path, n);
}

absl::StatusOr<pid_t> SpawnSelf(const std::vector<std::string>& argv, const std::vector<std::string>& more) {
  std::string self = SelfPath();
  std::vector<std::string> all = {self};
  all.insert(all.end(), argv.begin(), argv.end());
  all.insert(all.end(), more.begin(), more.end());
  std::vector<char*> cargs;
  for (std::string& a : all) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::ErrnoToStatus(rc, "posix_spawn " + self);
  return pid;
}

absl::Status WaitChild(pid_t child) {
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("child ", child, " ended with status ", status));
}

std::string Extra(const Args& args, const std::string& name, const std::string& fallback) {
  std::string prefix = "--" + name + "=";
  for (const std::string& e : args.extra) {
    if (e.rfind(prefix, 0) == 0) return e.substr(prefix.size());
  }
  return fallback;
}

}  // namespace compare
