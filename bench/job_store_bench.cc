// The master's job store (daemon/master/job_store.h): how many events per
// second an output-heavy job can pour into it.
//
//   bazel run -c opt //bench:job_store_bench [-- --events=200000 --flushed=2000 --runs=3 --dir=/var/tmp]
//
// Batched: `events` output events of 100 bytes are Appended as fast as one
// thread can, then one Flush(); the commit thread commits every 2 ms (or
// every 4096 events) meanwhile. Flushed: the same, but a Flush() after every
// Append, i.e. one transaction per event, on fewer events. Both with the
// default durability (WAL, synchronous=NORMAL: no fsync per commit) and with
// fsync_each_commit. Figures only; nothing here passes or fails.
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "bench/bench_support.h"
#include "daemon/master/job_store.h"

namespace {

using constellation::daemon::master::JobRecord;
using constellation::daemon::master::JobStore;
namespace v1 = constellation::v1;

struct Result {
  double seconds = 0;
  double append_seconds = 0;  // of which in Append itself
  double cpu_seconds = 0;     // every thread (Append, commits)
  int commits = 0;
};

v1::JobEvent OutputEvent(const std::string& data) {
  v1::JobEvent event;
  event.set_time_ms(1);
  event.mutable_process()->mutable_output()->set_fd(1);
  event.mutable_process()->mutable_output()->set_data(data);
  return event;
}

// A fresh store in a fresh directory under `parent`, fed `events` events.
Result Run(const std::string& parent, bool fsync, bool flush_each, int events) {
  std::string dir = parent + "/job_store_bench.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    perror("mkdtemp");
    exit(1);
  }
  Result result;
  {
    JobStore::Options options;
    options.fsync_each_commit = fsync;
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir + "/state", options);
    if (!store.ok()) {
      fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
      exit(1);
    }
    (*store)->SetCommitListener([&](const auto&, const auto&) { ++result.commits; });  // one thread at a time
    JobRecord job;
    job.id = 1;
    job.job.set_state(v1::JOB_STATE_RUNNING);
    if (!(*store)->PutJob(job).ok()) exit(1);
    const v1::JobEvent event = OutputEvent(std::string(99, 'x') + "\n");
    bench::Usage usage = bench::GetUsage();
    int64_t start = bench::NowNs();
    int64_t in_append = 0;
    for (int i = 0; i < events; ++i) {
      int64_t t0 = bench::NowNs();
      (*store)->Append(1, event);
      in_append += bench::NowNs() - t0;
      if (flush_each && !(*store)->Flush().ok()) exit(1);
    }
    if (!(*store)->Flush().ok()) exit(1);
    result.seconds = (bench::NowNs() - start) / 1e9;
    result.append_seconds = in_append / 1e9;
    result.cpu_seconds = (bench::GetUsage() - usage).cpu_ns / 1e9;
    if ((*store)->CommittedSeq(1) != static_cast<uint64_t>(events)) {
      fprintf(stderr, "only %llu of %d events committed\n", static_cast<unsigned long long>((*store)->CommittedSeq(1)),
              events);
      exit(1);
    }
  }
  std::filesystem::remove_all(dir);
  return result;
}

// The median run (by wall time) of `runs`.
void Measure(const char* name, int runs, const std::string& parent, bool fsync, bool flush_each, int events) {
  std::vector<Result> results;
  for (int i = 0; i < runs; ++i) results.push_back(Run(parent, fsync, flush_each, events));
  std::sort(results.begin(), results.end(), [](const Result& a, const Result& b) { return a.seconds < b.seconds; });
  const Result& r = results[results.size() / 2];
  printf("%-37s %7d events %11.0f events/s %8.2f us/event (in Append %5.2f, CPU %5.2f)  %5d commits\n", name, events,
         events / r.seconds, r.seconds * 1e6 / events, r.append_seconds * 1e6 / events, r.cpu_seconds * 1e6 / events,
         r.commits);
}

}  // namespace

int main(int argc, char** argv) {
  int events = 200000;
  int flushed = 2000;
  int runs = 3;
  std::string parent = "/tmp";
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    bool ok = true;
    if (absl::ConsumePrefix(&arg, "--events=")) {
      ok = absl::SimpleAtoi(arg, &events) && events > 0;
    } else if (absl::ConsumePrefix(&arg, "--flushed=")) {
      ok = absl::SimpleAtoi(arg, &flushed) && flushed > 0;
    } else if (absl::ConsumePrefix(&arg, "--runs=")) {
      ok = absl::SimpleAtoi(arg, &runs) && runs > 0;
    } else if (absl::ConsumePrefix(&arg, "--dir=")) {
      parent = std::string(arg);
    } else if (arg == "--quick") {
      events = 20000;
      flushed = 200;
      runs = 1;
    } else {
      ok = false;
    }
    if (!ok) {
      fprintf(stderr, "usage: job_store_bench [--events=N] [--flushed=N] [--runs=N] [--dir=PARENT] [--quick]\n");
      return 2;
    }
  }
  printf("job store under %s: output events of 100 bytes into one job, median of %d runs\n", parent.c_str(), runs);
  Measure("batched (default)", runs, parent, false, false, events);
  Measure("batched (fsync_each_commit)", runs, parent, true, false, events);
  Measure("Flush per Append (default)", runs, parent, false, true, flushed);
  Measure("Flush per Append (fsync_each_commit)", runs, parent, true, true, flushed);
  return 0;
}
