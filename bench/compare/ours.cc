// Our channels: A is the root process of a constellation program, B a
// process it spawn()s; one Sender<std::string> and one Receiver<std::string>
// each way, one value per message (send() copies a string under 16 KiB into
// the Sender's buffer and writes a bigger one from where it is; recv()
// returns a new string). By default a thread waiting in recv() sleeps in the
// socket's recv, spinning only while a big frame's bytes come fast
// (lib/net/mid_frame_spin.h); busy-polling is opt-in (below). See common.h for
// the protocol.
//
// Pinning: B is spawned while A is still unpinned, so B's monitor keeps every
// CPU; then A pins itself and B pins itself, every thread (the data plane's
// loop thread too). The bridge and the monitors stay unpinned; they do no
// work while messages flow.
//
// Coroutines (--async=both, or --async=a; latency only): A's round trips run
// in a coroutine under block_on (co_await async_send, then async_recv), and
// B's echo loop too, or B echoes with the blocking calls (--async=a). Each
// side keeps one executor for the whole test, as a program would.
//
// Busy-polling (--busy_poll_us=N, the ours-busy-poll row): both sides call
// set_busy_poll(N µs) first, so a recv spins that long before it sleeps.
//
// Start-up: A calls spawn() for a function that sends one 8-byte string back;
// the time runs from spawn() to recv() returning it. A waits for each child's
// exit before the next spawn.
#include <string>
#include <vector>

#include "absl/strings/numbers.h"

#include "bench/bench_support.h"
#include "bench/compare/common.h"
#include "constellation/constellation.h"

namespace {

using compare::Args;
using compare::DieIf;
using constellation::Pid;

constexpr absl::Duration kTimeout = absl::Seconds(20);  // no wait in a measurement takes this long

class OursEndpoint : public compare::Endpoint {
 public:
  explicit OursEndpoint(Pid remote) : out_(remote), in_(remote) {}
  char* Prepare(size_t size) override {
    if (message_.size() != size) message_.resize(size);
    return message_.data();
  }
  absl::Status Send(size_t) override { return out_.send(message_); }
  absl::StatusOr<std::string_view> Recv(size_t) override {
    absl::StatusOr<std::string> value = in_.recv_for(kTimeout);
    if (!value.ok()) return value.status();
    received_ = *std::move(value);
    return std::string_view(received_);
  }
  // Returns once the remote process has exited (its channel answers kUnavailable).
  absl::Status AwaitExit() {
    while (true) {
      absl::StatusOr<std::string> value = in_.recv_for(kTimeout);
      if (absl::IsUnavailable(value.status())) return absl::OkStatus();
      if (!value.ok()) return value.status();
    }
  }

 private:
  constellation::Sender<std::string> out_;
  constellation::Receiver<std::string> in_;
  std::string message_, received_;
};

constellation::Task<void> AsyncPing(Pid remote, const Args& args) {
  constellation::Sender<std::string> out(remote);
  constellation::Receiver<std::string> in(remote);
  std::string message(args.size, '\0');
  compare::LatencyLoop loop(args);
  do {
    compare::PutHeader(message.data(), loop.Start());
    DieIf(co_await out.async_send(message), "async_send");
    absl::StatusOr<std::string> echo = co_await in.async_recv_for(kTimeout);
    DieIf(echo.status(), "async_recv");
    loop.Finish(compare::GetHeader(*echo));
  } while (!loop.done());
  loop.Write();
  while (true) {  // until B has exited, as OursEndpoint::AwaitExit
    absl::StatusOr<std::string> more = co_await in.async_recv_for(kTimeout);
    if (absl::IsUnavailable(more.status())) break;
    DieIf(more.status(), "A");
  }
}

constellation::Task<void> AsyncEcho(Pid parent, const Args& args) {
  constellation::Sender<std::string> out(parent);
  constellation::Receiver<std::string> in(parent);
  while (true) {
    absl::StatusOr<std::string> message = co_await in.async_recv_for(kTimeout);
    DieIf(message.status(), "async_recv");
    if (message->size() != static_cast<size_t>(args.size)) compare::Die("B: a message of the wrong size");
    DieIf(co_await out.async_send(*message), "async_send");
    if (compare::IsLast(compare::GetHeader(*message))) break;
  }
}

std::string AsyncMode(const Args& args) {
  std::string mode = compare::Extra(args, "async");
  if (mode != "" && mode != "both" && mode != "a") compare::Die("--async=both|a");
  if (mode != "" && args.test != compare::Test::kLatency) compare::Die("--async is for --test=latency only");
  return mode;
}

// --busy_poll_us=N: set_busy_poll (busy_poll.h); both sides read the same flags.
void SetBusyPoll(const Args& args) {
  std::string us = compare::Extra(args, "busy_poll_us");
  if (us.empty()) return;
  int64_t n = 0;
  if (!absl::SimpleAtoi(absl::string_view(us), &n) || n < 0) compare::Die("--busy_poll_us=N");
  constellation::set_busy_poll(absl::Microseconds(n));
}

// B: the same command line as A, passed through spawn.
void B(Pid parent, std::vector<std::string> argv) {
  std::vector<char*> cargs = {const_cast<char*>("compare_ours")};
  for (std::string& a : argv) cargs.push_back(a.data());
  absl::StatusOr<Args> args = compare::ParseArgs(static_cast<int>(cargs.size()), cargs.data());
  DieIf(args.status(), "B");
  if (!bench::PinProcess(args->cpu_b)) compare::Die("B: cannot pin");
  SetBusyPoll(*args);
  if (AsyncMode(*args) == "both") {
    constellation::block_on(AsyncEcho(parent, *args));
    return;
  }
  OursEndpoint endpoint(parent);
  compare::RunB(endpoint, *args);
}

void StartChild(Pid parent) { DieIf(constellation::Sender<std::string>(parent).send(std::string(8, '\0')), "start"); }

absl::StatusOr<int64_t> StartOne() {
  int64_t t0 = bench::NowNs();
  absl::StatusOr<Pid> child = constellation::spawn(constellation::Resources(), StartChild);
  if (!child.ok()) return child.status();
  constellation::Receiver<std::string> in(*child);
  absl::StatusOr<std::string> first = in.recv_for(kTimeout);
  int64_t t1 = bench::NowNs();
  if (!first.ok()) return first.status();
  while (true) {  // the next start begins once this child is gone
    absl::StatusOr<std::string> more = in.recv_for(kTimeout);
    if (absl::IsUnavailable(more.status())) break;
    if (!more.ok()) return more.status();
  }
  return t1 - t0;
}

// Resources are enforced (docs/resources.md): each of the pair declares a
// whole core, as a program measuring its own speed would, so a CPU quota
// never throttles it. The start-up children keep the defaults.
constexpr constellation::Resources kPair{512 * constellation::kMiB, 1.0};

}  // namespace

int main(int argc, char** argv) {
  bench::InitCpus();
  absl::StatusOr<Args> args = compare::ParseArgs(argc, argv);
  DieIf(args.status(), "usage");
  constellation::init(kPair);  // a spawned B runs B() in here and exits
  if (args->test == compare::Test::kStart) {
    compare::RunStarts(*args, StartOne);
    return 0;
  }
  std::string async = AsyncMode(*args);
  absl::StatusOr<Pid> child = constellation::spawn(kPair, B, args->argv);
  DieIf(child.status(), "spawn");
  if (!bench::PinProcess(args->cpu_a)) compare::Die("A: cannot pin");
  SetBusyPoll(*args);
  if (!async.empty()) {
    constellation::block_on(AsyncPing(*child, *args));
    return 0;
  }
  OursEndpoint endpoint(*child);
  compare::RunA(endpoint, *args);
  DieIf(endpoint.AwaitExit(), "A");
  return 0;
}
