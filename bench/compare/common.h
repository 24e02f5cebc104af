#pragma once

// What every system's benchmark binary of //bench:compare shares: its command
// line, the message protocol of the measurements, and the result it writes.
//
// A measurement runs between two processes of one system: A (the process the
// driver starts, or MPI rank 0, or the root of our program) measures and
// writes one JSON object to --out; B (started by A, or rank 1) answers. Each
// system implements an Endpoint (one side of its connection) and calls
// RunA / RunB, so every system runs exactly the same loops.
//
// Messages: every message is at least 8 bytes; its first 8 bytes are a
// header (sequence number and flags, below), the rest is filler that is sent
// but never looked at. B answers a latency message with a message of the same
// size carrying the same header (it does not copy the filler).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace compare {

enum class Test { kLatency, kThroughput, kRate, kStart };

// One measurement, as the driver passes it on the command line:
//   --test=latency|throughput|rate|start --size=BYTES --cpus=A,B (-1: unpinned)
//   --warmup=N --count=N --seconds=S (cap on the timed phase) --out=FILE
// and, for the process B that A starts: --role=b --peer=ENDPOINT.
struct Args {
  Test test = Test::kLatency;
  int64_t size = 8;
  int cpu_a = -1, cpu_b = -1;
  int64_t warmup = 100;
  int64_t count = 1000;
  double seconds = 5;  // the timed phase ends after `count` messages or this long (at least 200 of them)
  std::string out;     // where A writes its result
  std::string role = "a";
  std::string peer;                // B: how to reach A (a port, a ZeroMQ endpoint)
  std::vector<std::string> argv;   // as given, without argv[0]: B gets the same
  std::vector<std::string> extra;  // --name=value flags a system reads itself
};

absl::StatusOr<Args> ParseArgs(int argc, char** argv);

// Parses the command line and pins this process to its CPU (cpu_a or cpu_b by
// role). Exits with a message on bad arguments.
Args Setup(int argc, char** argv);

// Prints "compare_<system>: <what>" to stderr and exits 1.
[[noreturn]] void Die(const std::string& what);
void DieIf(const absl::Status& status, const std::string& what);

// One side of a two-process connection. The buffer Prepare returns stays valid
// until the next Prepare or Send; the view Recv returns until the next Recv.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  virtual char* Prepare(size_t size) = 0;  // the next message's bytes
  virtual absl::Status Send(size_t size) = 0;
  // One message; `expected` is its size (systems without framing read exactly that).
  virtual absl::StatusOr<std::string_view> Recv(size_t expected) = 0;
};

// The measuring side: runs args.test (latency, throughput or rate) and writes
// the result to args.out. The answering side: runs until A's last message.
void RunA(Endpoint& endpoint, const Args& args);
void RunB(Endpoint& endpoint, const Args& args);

// The latency test's round trips, for a side that cannot call RunA (a
// coroutine, which must co_await its own sends and receives):
//   LatencyLoop loop(args);
//   do { send a message with loop.Start() as header; loop.Finish(its echo's header); } while (!loop.done());
//   loop.Write();
// RunA's latency test is this loop too.
class LatencyLoop {
 public:
  explicit LatencyLoop(const Args& args);
  uint64_t Start();            // starts the next round trip's clock: the header to send
  void Finish(uint64_t echo);  // its echo arrived; dies if it is out of order
  bool done() const { return done_; }
  void Write() const;  // the percentiles, to args.out

 private:
  const Args& args_;
  std::vector<double> rtt_us_;
  int64_t i_ = 0, deadline_ = 0, t0_ = 0;
  int64_t cpu0_ns_ = 0, wall0_ns_ = 0;  // this process's CPU time and the clock at the timed phase's start
  bool last_ = false, done_ = false;
};

// The answering side's loop, one message at a time (RunB's latency test):
// the header of a message received, whether it is the test's last.
uint64_t GetHeader(std::string_view message);
void PutHeader(char* p, uint64_t header);
bool IsLast(uint64_t header);
// This process's CPU time so far (every thread, user + sys), in nanoseconds.
int64_t CpuNs();

// The start-up test: calls start_one warmup + count times (it returns the
// nanoseconds from starting a process to having its first message) and writes
// the percentiles to args.out.
void RunStarts(const Args& args, const std::function<absl::StatusOr<int64_t>()>& start_one);

// Writes {json_fields} and a newline to args.out (stdout if none).
void WriteResult(const Args& args, const std::string& json_fields);

// Starts this binary again (its real path, not /proc/self/exe, so MPI's
// daemons can start it too) with `args.argv` plus `more`, stdin from
// /dev/null. Returns the child's pid.
absl::StatusOr<pid_t> SpawnSelf(const std::vector<std::string>& argv, const std::vector<std::string>& more);
std::string SelfPath();

// waitpid for `child`; an error if it did not exit 0.
absl::Status WaitChild(pid_t child);

// The value of --name=value among args.extra, or `fallback`.
std::string Extra(const Args& args, const std::string& name, const std::string& fallback = "");

}  // namespace compare
