// Fan-in: N sender processes (spawn()) stream 8-byte values into the root
// process, which receives them all in one of three ways:
//
//   --fan_in=threads   blocking recv(), one thread per sender (N threads);
//   --fan_in=when_all  one thread: block_on(when_all of N coroutines, each a
//                      loop of co_await async_recv() on its sender's channel);
//   --fan_in=select    one thread: block_on(a loop of co_await select_async
//                      over the senders that still have values to send).
//
// (The blocking select() takes an initializer list, so it cannot wait on N
// channels chosen at run time: there is no one-thread blocking form.)
//
//   --n=N --msgs=M     each sender sends M values 1..M (checked in order).
//
// Every sender first sends one value and waits for the root's "go", so the
// timed phase (the first "go" to the last value received) excludes spawning
// and connection set-up; afterwards it waits for "bye" before it exits, so
// no exit overlaps the timed phase. The root writes messages, seconds and
// msgs_per_s to --out.
#include <algorithm>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "bench/bench_support.h"
#include "bench/compare/common.h"
#include "constellation/constellation.h"

namespace {

using compare::Die;
using compare::DieIf;
using constellation::Pid;
using constellation::Receiver;
using constellation::Sender;
using constellation::Task;

constexpr absl::Duration kTimeout = absl::Seconds(60);

template <class T>
T Recv(Receiver<T>& receiver) {
  absl::StatusOr<T> value = receiver.recv_for(kTimeout);
  DieIf(value.status(), "recv");
  return *std::move(value);
}

void Check(const absl::StatusOr<uint64_t>& value, uint64_t expected) {
  DieIf(value.status(), "recv");
  if (*value != expected) Die(absl::StrFormat("value %d, expected %d (out of order)", *value, expected));
}

void Member(Pid root, int64_t msgs) {
  Sender<uint64_t> out(root);
  Receiver<int64_t> in(root);
  DieIf(out.send(0), "send");  // connection set-up, before the clock
  Recv(in);                    // go
  for (int64_t i = 1; i <= msgs; ++i) DieIf(out.send(static_cast<uint64_t>(i)), "send");
  Recv(in);  // bye
}

// Resources are enforced (docs/resources.md) and all n must run at once: the
// root (the receiver) declares a whole core (half the machine on one core),
// the senders share what is left.
double Cores() { return std::max(1, CPU_COUNT(&bench::g_all_cpus)); }
double RootCpu() { return std::min(1.0, Cores() / 2); }
constellation::Resources MemberResources(int64_t n) {
  double share = std::max(0.01, (Cores() - RootCpu()) * 0.95 / static_cast<double>(n));
  return constellation::Resources{64 * constellation::kMiB, share};
}

void Threads(std::vector<Receiver<uint64_t>>& in, int64_t msgs, const std::function<void()>& go) {
  std::vector<std::thread> threads;
  for (Receiver<uint64_t>& r : in) {
    threads.emplace_back([&r, msgs] {
      for (int64_t i = 1; i <= msgs; ++i) Check(r.recv_for(kTimeout), static_cast<uint64_t>(i));
    });
  }
  go();
  for (std::thread& t : threads) t.join();
}

Task<void> Drain(Receiver<uint64_t>& in, int64_t msgs) {
  for (int64_t i = 1; i <= msgs; ++i) Check(co_await in.async_recv_for(kTimeout), static_cast<uint64_t>(i));
}

Task<void> WhenAll(std::vector<Receiver<uint64_t>>& in, int64_t msgs) {
  std::vector<Task<void>> tasks;
  for (Receiver<uint64_t>& r : in) tasks.push_back(Drain(r, msgs));
  co_await constellation::when_all(std::move(tasks));
}

Task<void> SelectLoop(std::vector<Receiver<uint64_t>>& in, int64_t msgs) {
  std::vector<int64_t> got(in.size(), 0);
  int64_t left = static_cast<int64_t>(in.size()) * msgs;
  while (left > 0) {
    std::vector<constellation::SelectCase> cases;
    for (size_t k = 0; k < in.size(); ++k) {
      if (got[k] == msgs) continue;
      cases.push_back(constellation::on_recv(in[k], [&got, &left, k](absl::StatusOr<uint64_t> v) {
        Check(v, static_cast<uint64_t>(++got[k]));
        --left;
      }));
    }
    absl::StatusOr<size_t> which = co_await constellation::select_async(std::move(cases), kTimeout);
    DieIf(which.status(), "select_async");
  }
}

void FanIn(const compare::Args& args, const std::string& how, int64_t n, int64_t msgs) {
  std::vector<Pid> pids;
  for (int64_t i = 0; i < n; ++i) {
    absl::StatusOr<Pid> child = constellation::spawn(MemberResources(n), Member, msgs);
    DieIf(child.status(), "spawn");
    pids.push_back(*child);
  }
  std::vector<Sender<int64_t>> to;
  std::vector<Receiver<uint64_t>> from;
  for (const Pid& p : pids) {
    to.emplace_back(p);
    from.emplace_back(p);
  }
  for (Receiver<uint64_t>& r : from) Recv(r);  // every connection is up
  int64_t t0 = 0;
  auto go = [&] {
    t0 = bench::NowNs();
    for (Sender<int64_t>& s : to) DieIf(s.send(1), "go");
  };
  if (how == "threads") {
    Threads(from, msgs, go);
  } else if (how == "when_all") {
    go();
    constellation::block_on(WhenAll(from, msgs));
  } else {
    go();
    constellation::block_on(SelectLoop(from, msgs));
  }
  double seconds = (bench::NowNs() - t0) / 1e9;
  for (Sender<int64_t>& s : to) DieIf(s.send(2), "bye");
  int64_t total = n * msgs;
  compare::WriteResult(args, absl::StrFormat("\"senders\":%d,\"messages\":%d,\"seconds\":%.6f,\"msgs_per_s\":%.1f", n,
                                             total, seconds, total / seconds));
}

}  // namespace

int main(int argc, char** argv) {
  bench::InitCpus();
  absl::StatusOr<compare::Args> args = compare::ParseArgs(argc, argv);
  DieIf(args.status(), "usage");
  constellation::init(constellation::Resources{256 * constellation::kMiB, RootCpu()});  // senders run in here
  int64_t n = 0, msgs = 0;
  std::string how = compare::Extra(*args, "fan_in");
  if (how != "threads" && how != "when_all" && how != "select") Die("--fan_in=threads|when_all|select needed");
  if (!absl::SimpleAtoi(compare::Extra(*args, "n"), &n) || n < 1 || n > 4096) Die("--n=N (1..4096) needed");
  if (!absl::SimpleAtoi(compare::Extra(*args, "msgs"), &msgs) || msgs < 1) Die("--msgs=M needed");
  FanIn(*args, how, n, msgs);
  return 0;
}
