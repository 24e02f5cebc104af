// Our scale rows: N processes all-to-all, memory per idle process and per
// open connection. A constellation program; the root measures and writes one
// JSON object to --out.
//
//   --scale=all_to_all --n=N --msgs=M   N processes each send M 8-byte values
//       to every other and receive M from every other, in rounds of 100 per
//       peer (sends are buffered up to 1024 frames a peer, so nobody waits on
//       a full queue). Every connection carries one value each way first, so
//       the timed phase (the root's "go" to the last "done") excludes set-up.
//   --scale=memory --n=K   K idle processes, each blocked in recv(): RSS and
//       PSS of each user process and of its monitor (the user process's parent,
//       lib/process: init() forks and the parent monitors). Then one of them
//       (the hub) opens a channel pair to the K-1 others and exchanges a value
//       on each: its RSS growth per connection, and the others' growth.
//   --scale=connections --n=N   the cost of one idle connection, at each end
//       (scale_connections.cc).
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "bench/bench_support.h"
#include "bench/compare/common.h"
#include "bench/compare/scale_connections.h"
#include "constellation/constellation.h"
#include "lib/net/channel.h"

namespace {

using compare::Die;
using compare::DieIf;
using constellation::Pid;
using constellation::Receiver;
using constellation::Sender;

constexpr absl::Duration kTimeout = absl::Seconds(60);
constexpr int64_t kRound = 100;  // values per peer between receives

template <class T>
T Recv(Receiver<T>& receiver) {
  absl::StatusOr<T> value = receiver.recv_for(kTimeout);
  DieIf(value.status(), "recv");
  return *std::move(value);
}

// ---------------------------------------------------------------------------
// All-to-all.

void Member(Pid root, int64_t msgs) {
  std::vector<Pid> everyone;
  {
    Receiver<std::vector<Pid>> list(root);
    everyone = Recv(list);
  }
  std::vector<std::pair<Sender<uint64_t>, Receiver<uint64_t>>> links;
  for (const Pid& other : everyone) {
    if (other != constellation::pid()) links.emplace_back(Sender<uint64_t>(other), Receiver<uint64_t>(other));
  }
  for (auto& [out, in] : links) DieIf(out.send(0), "send");  // connection set-up, before the clock
  for (auto& [out, in] : links) Recv(in);
  Sender<int64_t> to_root(root);
  Receiver<int64_t> from_root(root);
  DieIf(to_root.send(1), "ready");
  Recv(from_root);  // go
  for (int64_t done = 0; done < msgs; done += kRound) {
    int64_t n = std::min(kRound, msgs - done);
    for (auto& [out, in] : links) {
      for (int64_t i = 0; i < n; ++i) DieIf(out.send(static_cast<uint64_t>(done + i)), "send");
    }
    for (auto& [out, in] : links) {
      for (int64_t i = 0; i < n; ++i) Recv(in);
    }
  }
  DieIf(to_root.send(2), "done");
}

// Resources are enforced (docs/resources.md) and all n must run at once:
// each asks for an equal share of what the machine's cores leave beside the
// root, as a real program sized to the machine would.
constexpr double kRootCpu = 0.05;
constellation::Resources MemberResources(int64_t n) {
  double cores = std::max(1, CPU_COUNT(&bench::g_all_cpus));
  return constellation::Resources{64 * constellation::kMiB, (cores - kRootCpu) * 0.95 / static_cast<double>(n)};
}

void AllToAll(const compare::Args& args, int64_t n, int64_t msgs) {
  std::vector<Pid> pids;
  for (int64_t i = 0; i < n; ++i) {
    absl::StatusOr<Pid> child = constellation::spawn(MemberResources(n), Member, msgs);
    DieIf(child.status(), "spawn");
    pids.push_back(*child);
  }
  for (const Pid& p : pids) DieIf(Sender<std::vector<Pid>>(p).send(pids), "send");
  std::vector<Sender<int64_t>> to;
  std::vector<Receiver<int64_t>> from;
  for (const Pid& p : pids) {
    to.emplace_back(p);
    from.emplace_back(p);
  }
  for (auto& r : from) Recv(r);  // ready
  int64_t t0 = bench::NowNs();
  for (auto& s : to) DieIf(s.send(0), "go");
  for (auto& r : from) Recv(r);  // done
  double seconds = (bench::NowNs() - t0) / 1e9;
  int64_t total = n * (n - 1) * msgs;
  compare::WriteResult(args, absl::StrFormat("\"processes\":%d,\"messages\":%d,\"seconds\":%.6f,\"msgs_per_s\":%.1f", n,
                                             total, seconds, total / seconds));
}

// ---------------------------------------------------------------------------
// Memory.

// A field of /proc/<pid>/status or smaps_rollup, in KiB ("VmRSS:", "Pss:").
int64_t ProcKiB(int64_t pid, const char* file, const std::string& field) {
  std::ifstream in(absl::StrFormat("/proc/%d/%s", pid, file));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) != 0) continue;
    int64_t kib = 0;
    std::string digits;
    for (char c : line.substr(field.size())) {
      if (c >= '0' && c <= '9') digits += c;
    }
    if (absl::SimpleAtoi(digits, &kib)) return kib;
  }
  Die(absl::StrFormat("no %s in /proc/%d/%s", field, pid, file));
}

int64_t Rss(int64_t pid) { return ProcKiB(pid, "status", "VmRSS:"); }
int64_t Pss(int64_t pid) { return ProcKiB(pid, "smaps_rollup", "Pss:"); }

// Reports its OS pid and its monitor's, then serves the root's commands: an
// empty list ends it; otherwise it opens a channel pair to each pid listed,
// exchanges one value on each and reports that it has (keeping the channels).
void Idle(Pid root) {
  Sender<int64_t> to_root(root);
  Receiver<std::vector<Pid>> from_root(root);
  DieIf(to_root.send(getpid()), "send");
  DieIf(to_root.send(getppid()), "send");
  std::vector<std::pair<Sender<uint64_t>, Receiver<uint64_t>>> links;
  while (true) {
    std::vector<Pid> peers = Recv(from_root);
    if (peers.empty()) return;
    for (const Pid& p : peers) links.emplace_back(Sender<uint64_t>(p), Receiver<uint64_t>(p));
    for (auto& [out, in] : links) DieIf(out.send(1), "send");
    for (auto& [out, in] : links) Recv(in);
    DieIf(to_root.send(1), "send");
  }
}

// Per idle process: RSS of the user process and of its monitor, PSS of both.
std::string IdleFigures(const std::vector<int64_t>& os_pids, const std::vector<int64_t>& monitors) {
  double user_rss = 0, monitor_rss = 0, pss = 0;
  for (size_t i = 0; i < os_pids.size(); ++i) {
    user_rss += Rss(os_pids[i]);
    monitor_rss += Rss(monitors[i]);
    pss += Pss(os_pids[i]) + Pss(monitors[i]);
  }
  double k = static_cast<double>(os_pids.size());
  return absl::StrFormat("\"user_rss_kib\":%.1f,\"monitor_rss_kib\":%.1f,\"pss_kib\":%.1f", user_rss / k,
                         monitor_rss / k, pss / k);
}

void Memory(const compare::Args& args, int64_t k) {
  if (k < 2) Die("--n must be at least 2");
  std::vector<Pid> pids;
  std::vector<int64_t> os_pids, monitors;
  for (int64_t i = 0; i < k; ++i) {
    absl::StatusOr<Pid> child = constellation::spawn(MemberResources(k), Idle);
    DieIf(child.status(), "spawn");
    pids.push_back(*child);
  }
  std::vector<Sender<std::vector<Pid>>> to;
  std::vector<Receiver<int64_t>> from;
  for (const Pid& p : pids) {
    to.emplace_back(p);
    from.emplace_back(p);
    os_pids.push_back(Recv(from.back()));
    monitors.push_back(Recv(from.back()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let start-up settle (lazy pages, loop thread)
  std::string idle = IdleFigures(os_pids, monitors);
  // Connections: process 0 (the hub) opens a channel pair to each other
  // process and they to it. The root reads every RSS before the first command
  // and after the last reply, so no connection is half counted.
  std::vector<int64_t> before(k);
  for (int64_t i = 0; i < k; ++i) before[i] = Rss(os_pids[i]);
  DieIf(to[0].send(std::vector<Pid>(pids.begin() + 1, pids.end())), "send");
  for (int64_t i = 1; i < k; ++i) DieIf(to[i].send({pids[0]}), "send");
  for (auto& r : from) Recv(r);
  double hub = static_cast<double>(Rss(os_pids[0]) - before[0]) / (k - 1);
  double others = 0;
  for (int64_t i = 1; i < k; ++i) others += Rss(os_pids[i]) - before[i];
  for (auto& s : to) DieIf(s.send({}), "send");
  compare::WriteResult(args, absl::StrFormat("\"processes\":%d,%s,\"hub_kib_per_conn\":%.2f,\"other_end_kib\":%.2f", k,
                                             idle, hub, others / (k - 1)));
}

}  // namespace

int main(int argc, char** argv) {
  bench::InitCpus();
  absl::StatusOr<compare::Args> args = compare::ParseArgs(argc, argv);
  DieIf(args.status(), "usage");
  int64_t n = 0, msgs = 0;
  if (!absl::SimpleAtoi(compare::Extra(*args, "n"), &n) || n < 1) Die("--n=N needed");
  std::string scale = compare::Extra(*args, "scale");
  if (scale == "connections") {
    compare::Connections(*args, n);  // its own processes and data planes, forked before any thread
    return 0;
  }
  constellation::init(constellation::Resources{256 * constellation::kMiB, kRootCpu});  // members run in here and exit
  if (scale == "all_to_all") {
    if (!absl::SimpleAtoi(compare::Extra(*args, "msgs"), &msgs) || msgs < 1) Die("--msgs=M needed");
    AllToAll(*args, n, msgs);
  } else if (scale == "memory") {
    Memory(*args, n);
  } else {
    Die("--scale=all_to_all|memory|connections needed");
  }
  return 0;
}
