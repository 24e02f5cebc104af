// Spawn latency: time from spawn() to the child's first output line reaching
// the bridge, and to its exit being reported, over 200 spawns, beside a bare
// fork+exec of the same binary measured in the same run.
//
//   bazel run -c opt //bench:spawn_latency [-- --spawns=200] [--gap=MS]
//     (--gap: an idle pause of MS milliseconds before each spawn, untimed, as
//     a program that spawns now and then has. On cgroup v1 a process's move
//     into its cgroup waits for an RCU grace period, 8-12 ms here, unless a
//     move happened in the last ~20 ms: back-to-back spawns never show it;
//     docs/resources.md)
//   bazel run -c opt //bench:spawn_latency -- --reply
//     (each child also sends the root one value before it exits: its exit
//     then includes the exit flush of that connection)
//   bazel run -c opt //bench:spawn_latency -- --many=1000
//     (instead: one program whose root spawn()s 1,000 processes back to back,
//     each exiting at once; prints how long spawning took and how long the
//     program ran, init() to the last exit, as the shell sees it)
//
// The driver (this binary with no arguments) runs itself under the bridge
// with CONSTELLATION_FORMAT=json and paces the root process through its stdin:
// for each "go" line the root notes the time and spawns a child that prints
// one line and exits; the driver timestamps the child's output and exit
// events as they arrive on the bridge's stdout. Same clock (CLOCK_MONOTONIC).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "constellation/constellation.h"

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Child(constellation::Pid, int index) { std::cout << "child " << index << std::endl; }

// --reply: the child also sends its parent one value before it exits, so
// its exit includes the exit flush of a connection (docs/channels.md).
void ReplyingChild(constellation::Pid parent, int index) {
  std::cout << "child " << index << std::endl;
  if (!constellation::Sender<int>(parent).send(index).ok()) std::exit(1);
}

void Quiet(constellation::Pid) {}

// Under the bridge: spawns `n` processes back to back, each exiting at once.
// The root declares a whole core (its loop is the measured work; a default
// 1/16 core quota would throttle it), each child 1/64 of one.
int RunManyRoot(int n) {
  constellation::init(constellation::Resources{256 * constellation::kMiB, 1.0});
  int64_t t0 = NowNs();
  for (int i = 0; i < n; ++i) {
    if (!constellation::spawn(constellation::Resources{16 * constellation::kMiB, 1.0 / 64}, Quiet).ok()) return 1;
  }
  fprintf(stderr, "spawned %d in %.0f ms\n", n, (NowNs() - t0) / 1e6);
  return 0;
}

// Runs the --many program to its end; returns its wall time in ms.
double MeasureMany(int n) {
  int64_t t0 = NowNs();
  pid_t bridge = fork();
  if (bridge == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    setenv("CONSTELLATION_CAPACITY", "1024 GiB,64", 1);  // the bench is about start-up, not placement
    std::string count = std::to_string(n);
    execl("/proc/self/exe", "spawn_latency", "--root-many", count.c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(bridge, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "the program failed: status %d\n", status);
  return (NowNs() - t0) / 1e6;
}

// Under the bridge: spawn one child per "go" line on stdin. With
// SPAWN_LATENCY_T1 set (bench/cluster_bench sets it) it also prints when
// spawn() returned, as "t1 <ns>" after the t0 line.
int RunRoot() {
  // A whole core, as RunManyRoot: at the default 1/16 core, back-to-back
  // spawns use up the root's CPU quota and the kernel stops it until the next
  // period, tens of ms, which the figures would count as spawn latency.
  constellation::init(constellation::Resources{256 * constellation::kMiB, 1.0});
  const bool report_return = getenv("SPAWN_LATENCY_T1") != nullptr;
  const bool reply = getenv("SPAWN_LATENCY_REPLY") != nullptr;
  std::string line;
  int index = 0;
  while (std::getline(std::cin, line)) {
    int64_t t0 = NowNs();
    auto child = constellation::spawn(constellation::Resources(), reply ? ReplyingChild : Child, index);
    int64_t t1 = NowNs();
    if (!child.ok()) return 1;
    std::cout << "t0 " << child->to_string() << " " << t0 << std::endl;
    if (report_return) std::cout << "t1 " << t1 << std::endl;
    if (reply && !constellation::Receiver<int>(*child).recv().ok()) return 1;
    ++index;
  }
  return 0;
}

// Reads the bridge's JSON lines as they come.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  bool Next(std::string* line) {
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      char chunk[65536];
      ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return false;
      buf_.append(chunk, n);
    }
  }

 private:
  int fd_;
  std::string buf_;
};

std::string Field(const std::string& line, const std::string& key) {
  std::string needle = "\"" + key + "\":\"";
  size_t start = line.find(needle);
  if (start == std::string::npos) return "";
  start += needle.size();
  return line.substr(start, line.find('"', start) - start);
}

struct Stats {
  std::vector<double> first_line_ms, exit_ms;
};

void Print(const char* name, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
  printf("  %-34s p50 %7.3f ms   p99 %7.3f ms   (n=%zu)\n", name, pct(0.50), pct(0.99), v.size());
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Pause(int gap_ms) {
  if (gap_ms > 0) usleep(static_cast<useconds_t>(gap_ms) * 1000);
}

Stats MeasureConstellation(int spawns, int gap_ms) {
  int to_root[2], from_bridge[2];
  if (pipe(to_root) != 0 || pipe(from_bridge) != 0) abort();
  pid_t bridge = fork();
  if (bridge == 0) {
    dup2(to_root[0], 0);
    dup2(from_bridge[1], 1);
    for (int fd : {to_root[0], to_root[1], from_bridge[0], from_bridge[1]}) close(fd);
    setenv("CONSTELLATION_FORMAT", "json", 1);
    execl("/proc/self/exe", "spawn_latency", "--root", nullptr);
    _exit(127);
  }
  close(to_root[0]);
  close(from_bridge[1]);
  LineReader reader(from_bridge[0]);
  Stats stats;
  std::string line;
  for (int i = 0; i < spawns; ++i) {
    Pause(gap_ms);
    if (write(to_root[1], "go\n", 3) != 3) abort();
    std::string child;
    int64_t t0 = 0, first_line = 0, exited = 0;
    while ((t0 == 0 || first_line == 0 || exited == 0) && reader.Next(&line)) {
      int64_t now = NowNs();
      std::string event = Field(line, "event");
      std::string pid = Field(line, "pid");
      if (event == "output" && line.find("\"data\"") != std::string::npos) {
        std::string data;
        absl::Base64Unescape(Field(line, "data"), &data);
        if (data.rfind("t0 ", 0) == 0) {
          size_t space = data.find(' ', 3);
          child = data.substr(3, space - 3);
          absl::SimpleAtoi(data.substr(space + 1, data.size() - space - 2), &t0);
        } else if (data.rfind("child ", 0) == 0 && first_line == 0) {
          first_line = now;
          if (child.empty()) child = pid;
        }
      } else if (event == "exit" && pid != "" && (pid == child || (child.empty() && first_line != 0))) {
        exited = now;
      }
    }
    if (t0 == 0 || first_line == 0 || exited == 0) {
      fprintf(stderr, "bridge output ended early\n");
      break;
    }
    stats.first_line_ms.push_back((first_line - t0) / 1e6);
    stats.exit_ms.push_back((exited - t0) / 1e6);
  }
  close(to_root[1]);
  while (reader.Next(&line)) {
  }
  waitpid(bridge, nullptr, 0);
  return stats;
}

Stats MeasureBareForkExec(int spawns, int gap_ms) {
  Stats stats;
  for (int i = 0; i < spawns; ++i) {
    Pause(gap_ms);
    int out[2];
    if (pipe(out) != 0) abort();
    int64_t t0 = NowNs();
    pid_t child = fork();
    if (child == 0) {
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      execl("/proc/self/exe", "spawn_latency", "--bare", nullptr);
      _exit(127);
    }
    close(out[1]);
    char buf[64];
    if (read(out[0], buf, sizeof(buf)) <= 0) abort();
    int64_t first_line = NowNs();
    waitpid(child, nullptr, 0);
    int64_t exited = NowNs();
    close(out[0]);
    stats.first_line_ms.push_back((first_line - t0) / 1e6);
    stats.exit_ms.push_back((exited - t0) / 1e6);
  }
  return stats;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--bare") == 0) {
    printf("child\n");
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "--root") == 0) return RunRoot();
  if (argc > 2 && std::strcmp(argv[1], "--root-many") == 0) return RunManyRoot(std::atoi(argv[2]));
  int spawns = 200;
  int gap_ms = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--spawns=", 9) == 0) spawns = std::atoi(argv[i] + 9);
    if (std::strncmp(argv[i], "--gap=", 6) == 0) gap_ms = std::max(0, std::atoi(argv[i] + 6));
    if (std::strcmp(argv[i], "--reply") == 0) setenv("SPAWN_LATENCY_REPLY", "1", 1);
    if (std::strncmp(argv[i], "--many=", 7) == 0) {
      int n = std::atoi(argv[i] + 7);
      printf("%d processes: %.0f ms from start to the last exit\n", n, MeasureMany(n));
      return 0;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  Stats bare = MeasureBareForkExec(spawns, gap_ms);
  Stats ours = MeasureConstellation(spawns, gap_ms);
  if (ours.exit_ms.empty()) return 1;
  printf("spawn latency over %d spawns, %d ms idle before each%s (2-core VM, unpinned):\n", spawns, gap_ms,
         getenv("SPAWN_LATENCY_REPLY") != nullptr ? ", each child sending the root a value before it exits" : "");
  Print("bare fork+exec: first line", bare.first_line_ms);
  Print("bare fork+exec: exit reaped", bare.exit_ms);
  Print("spawn(): first line at bridge", ours.first_line_ms);
  Print("spawn(): exit reported", ours.exit_ms);
  printf("  ratio of p50s (spawn/bare): first line %.2fx, exit %.2fx\n",
         Median(ours.first_line_ms) / Median(bare.first_line_ms), Median(ours.exit_ms) / Median(bare.exit_ms));
  return 0;
}
