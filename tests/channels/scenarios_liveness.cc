// Channels under pauses and limits (issue 13): a peer stopped longer than the
// handshake bound is slow, not dead; an exit with data queued to a stopped
// peer is reported; running out of fds never declares a live peer gone.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "constellation/constellation.h"
#include "tests/channels/scenarios.h"
#include "tests/channels/scenarios_util.h"

namespace channel_scenarios {
namespace {

using constellation::Pid;
using constellation::Receiver;
using constellation::Resources;
using constellation::Sender;

// ---- paused_peer: a peer stopped (SIGSTOP) for longer than the handshake bound -------------

// Longer than DataPlane::Options::handshake_timeout (10 s): a dial that meets
// the stopped peer times out and must be tried again, not declared dead.
constexpr absl::Duration kPause = absl::Seconds(12);
constexpr int64_t kFloodValues = 64;
constexpr size_t kFloodValue = 64 << 10;  // 4 MiB in all: more than a stopped peer's socket takes

// Tells the parent its OS pid (to be stopped), then, once resumed, receives
// from the dialer (1, 2, then 3 sent after the resume) and from the flooder
// (whatever arrived before it gave up, then its end).
void Paused(Pid parent) {
  ExpectOk(Sender<int64_t>(parent).send(getpid()), "paused: send os pid");
  // Stopped here by the parent; the parent then sends who dials and who floods.
  Receiver<Pid> from_parent(parent);
  Pid dialer = Get(from_parent.recv(), "paused: recv dialer");
  Pid flooder = Get(from_parent.recv(), "paused: recv flooder");
  Receiver<int> from_dialer(dialer);
  for (int want = 1; want <= 3; ++want) {
    int got = Get(from_dialer.recv(), "paused: recv from the dialer");
    Expect(got == want, absl::StrCat("paused: got ", got, " from the dialer, want ", want));
  }
  ExpectOk(Sender<int>(dialer).send(0), "paused: ack the dialer");
  Receiver<std::string> from_flooder(flooder);
  int64_t got = 0;
  absl::Status end;
  while (true) {
    absl::StatusOr<std::string> v = from_flooder.recv();
    if (!v.ok()) {
      end = v.status();
      break;
    }
    ExpectPayload(*v, got++, kFloodValue, "paused: from the flooder");
  }
  Expect(absl::IsUnavailable(end), "paused: the flooder's end: " + end.ToString());
  Report(
      absl::StrCat("paused peer got 1 2 3 from the dialer; ", got, " values from the flooder, then: ", end.message()));
}

// Dials the stopped peer: its sends are accepted, and none is lost or turned
// into a death while the peer sleeps past the handshake bound.
void Dialer(Pid parent, Pid paused) {
  Sender<int> out(paused);
  ExpectOk(out.send(1), "dialer: send 1");
  ExpectOk(out.send(2), "dialer: send 2");
  // The parent says when the pause is over.
  Get(Receiver<int>(parent).recv(), "dialer: recv resumed");
  ExpectOk(out.send(3), "dialer: send 3 after the resume");
  Get(Receiver<int>(paused).recv(), "dialer: recv the paused peer's ack");
  Report("dialer: every send to the paused peer succeeded and was acknowledged");
}

// Queues 4 MiB to the stopped peer and returns: the exit flush waits its
// bound, then reports the bytes it could not deliver (and the exit fails).
void Flooder(Pid parent, Pid paused) {
  Sender<std::string> out(paused);
  for (int64_t i = 0; i < kFloodValues; ++i) {
    absl::Status status = out.send_for(Payload(i, kFloodValue), absl::Seconds(1));
    if (absl::IsDeadlineExceeded(status)) break;  // the bound toward a stopped peer
    ExpectOk(status, "flooder: send");
  }
  Report("flooder returns with values queued to the stopped peer");
}

int PausedPeer() {
  Pid paused = Spawn(Paused);
  pid_t os_pid = static_cast<pid_t>(Get(Receiver<int64_t>(paused).recv(), "recv os pid"));
  Expect(kill(os_pid, SIGSTOP) == 0, "SIGSTOP the paused peer");
  Pid dialer = Spawn(Dialer, paused);
  Pid flooder = Spawn(Flooder, paused);
  Sender<Pid> to_paused(paused);
  ExpectOk(to_paused.send(dialer), "send dialer");  // queued: the peer is stopped
  ExpectOk(to_paused.send(flooder), "send flooder");
  absl::SleepFor(kPause);
  Expect(kill(os_pid, SIGCONT) == 0, "SIGCONT the paused peer");
  ExpectOk(Sender<int>(dialer).send(1), "tell the dialer");
  Receiver<int> from_dialer(dialer);
  ExpectGone(from_dialer, "the dialer's end");
  Receiver<int> from_paused(paused);
  ExpectGone(from_paused, "the paused peer's end");
  Report(absl::StrCat("paused for ", absl::FormatDuration(kPause), "; both ends carried on"));
  return 0;
}

// ---- fd_limit: many live peers and few fds ----------------------------------------------------

// Small, with a CPU quota that does not make start-up crawl: the scenario
// declares a capacity (CONSTELLATION_CAPACITY) for a thousand of them.
constexpr Resources kSmall{16 * constellation::kMiB, 0.5};

// Tells the parent its index, then waits for the parent's word to stop. A
// RESOURCE_EXHAUSTED (no fd for a connection, here or at the parent) is
// transient: try again. Anything else (a peer declared gone) fails.
void Idle(Pid parent, int index) {
  Sender<int> out(parent);
  ExpectOk(out.send(index), "idle: send index");
  Receiver<int> in(parent);
  while (true) {
    absl::StatusOr<int> v = in.recv();
    if (v.ok()) return;
    Expect(absl::IsResourceExhausted(v.status()), "idle: recv: " + v.status().ToString());
  }
}

int FdLimit(int children) {
  absl::Time start = absl::Now();
  std::vector<Pid> spawned;
  std::string stopped = "none";
  for (int i = 0; i < children; ++i) {
    absl::StatusOr<Pid> child = constellation::try_spawn(kSmall, Idle, i);
    if (!child.ok()) {
      stopped = child.status().ToString();
      break;
    }
    spawned.push_back(*child);
  }
  absl::Duration spawning = absl::Now() - start;
  int exhausted = 0;
  for (size_t i = 0; i < spawned.size(); ++i) {
    Receiver<int> in(spawned[i]);
    while (true) {
      absl::StatusOr<int> v = in.recv();
      if (v.ok()) {
        Expect(*v == static_cast<int>(i), absl::StrCat("fd_limit: child ", i, " sent ", *v));
        break;
      }
      Expect(absl::IsResourceExhausted(v.status()),
             absl::StrCat("fd_limit: recv from child ", i, ": ", v.status().ToString()));
      ++exhausted;
    }
    absl::Status sent;
    Sender<int> out(spawned[i]);
    while (!(sent = out.send(0)).ok()) {
      Expect(absl::IsResourceExhausted(sent), "fd_limit: send to child: " + sent.ToString());
      ++exhausted;
    }
  }
  for (const Pid& child : spawned) {
    Receiver<int> in(child);
    absl::StatusOr<int> v = in.recv();
    while (absl::IsResourceExhausted(v.status())) v = in.recv();
    Expect(absl::IsUnavailable(v.status()) && absl::StrContains(v.status().message(), "exited with code 0"),
           "fd_limit: a child's end: " + v.status().ToString());
  }
  std::fprintf(stderr, "fd_limit: spawning took %s, all took %s\n", absl::FormatDuration(spawning).c_str(),
               absl::FormatDuration(absl::Now() - start).c_str());
  Report(absl::StrCat("fd_limit: ", spawned.size(), " of ", children, " live peers answered (spawning stopped: ",
                      stopped, "; ", exhausted, " operations reported RESOURCE_EXHAUSTED); none was declared gone"));
  return 0;
}

}  // namespace

void LimitFilesForScenario(int argc, char** argv) {
  if (argc < 4 || std::string(argv[1]) != "fd_limit") return;
  rlimit limit{};
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(IntArg(argc, argv, 3, 1024));
  setrlimit(RLIMIT_NOFILE, &limit);  // as `ulimit -n` would, for every process of the program
  setenv("CONSTELLATION_CAPACITY", "64 GiB,1000", 1);
}

int RunLivenessScenario(const std::string& name, int argc, char** argv) {
  if (name == "paused_peer") return PausedPeer();
  if (name == "fd_limit") return FdLimit(IntArg(argc, argv, 2, 1000));
  return kUnknownScenario;
}

}  // namespace channel_scenarios
