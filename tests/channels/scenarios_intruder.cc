// Channel scenarios (scenarios.h) with an outsider who knows a process's Pids
// but not the program's secret: a hello forged to claim to be a child, and a
// flood of connections that never prove themselves plus one that trickles
// its hello. Neither may cost a real child's value.
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "constellation/constellation.h"
#include "lib/core/codec.h"
#include "lib/net/frame.h"
#include "lib/net/handshake.h"
#include "lib/net/test_util.h"
#include "tests/channels/intruder.h"
#include "tests/channels/scenarios.h"
#include "tests/channels/scenarios_util.h"

using namespace constellation;

namespace channel_scenarios {
namespace {

constexpr int kRealValue = 42;
constexpr int kInjected = 666;

// The real child: waits for the attacker's go (over a channel with the
// attacker, so the parent has no connection to it before the attack), then
// sends the parent its value and returns.
void RealChild(Pid parent, Pid attacker) {
  Get(Receiver<int>(attacker).recv(), "child: the go");
  ExpectOk(Sender<int>(parent).send(kRealValue), "child: send to parent");
}

// Open and data frames carrying `value`, as a Sender<int> writes them.
std::string IntFrames(int value) {
  std::string name(type_name<int>());
  std::string payload = encode(value);
  return HeaderBytes(net::FrameKind::kOpen, 0, type_fingerprint<int>(), name.size()) + name +
         HeaderBytes(net::FrameKind::kData, 0, type_fingerprint<int>(), payload.size()) + payload;
}

// ---- forged_child: a hello that claims to be a child ---------------------------------------

void ForgingAttacker(Pid parent) {
  Pid child = Get(Receiver<Pid>(parent).recv(), "attacker: the child's pid");
  // What an outsider can make: the child's Pid (seen, say, in /proc/net/tcp
  // and a former kWrongPid reply), a fresh dial, a guessed proof, a value.
  Intrusion in = Intrude(parent, child, parent, /*secret=*/"", IntFrames(kInjected));
  Expect(!in.verdict.has_value(), "forged hello: got a verdict");
  Expect(in.rest.empty(), absl::StrCat("forged hello: ", in.rest.size(), " bytes came back after the challenge"));
  ExpectOk(Sender<int>(child).send(1), "attacker: go to the child");
  ExpectOk(Sender<int>(parent).send(1), "attacker: done");
}

// The parent's side of an attack: starts the attacker and a real child, lets
// the attacker do its worst to this process, then expects the child's value.
int SurviveAttack(void (*attacker_fn)(Pid), const std::string& report) {
  Pid attacker = Spawn(attacker_fn);
  Pid child = Spawn(RealChild, attacker);
  ExpectOk(Sender<Pid>(attacker).send(child), "send the child's pid to the attacker");
  Get(Receiver<int>(attacker).recv(), "the attacker's done");
  Receiver<int> from_child(child);
  int v = Get(from_child.recv(), "recv from the child");
  Expect(v == kRealValue, absl::StrCat("received ", v, " from the child, not its value ", kRealValue));
  ExpectGone(from_child, "recv after the child returned");
  Report(report);
  return 0;
}

int ForgedChild() {
  return SurviveAttack(ForgingAttacker, "forged child: the forged hello failed, the real value arrived");
}

// ---- flood: 1,100 unproved connections and a trickle ---------------------------------------

constexpr int kFlood = 1100;

void FloodingAttacker(Pid parent) {
  Pid child = Get(Receiver<Pid>(parent).recv(), "attacker: the child's pid");
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;  // as many fds as this user may have: a real attacker would
  setrlimit(RLIMIT_NOFILE, &limit);
  // The flood: each connection sends a well-formed dial, then nothing. The
  // child is told to send its value (dialing the parent) in the middle of it.
  std::vector<int> open;
  for (int i = 0; i < kFlood; ++i) {
    int fd = ConnectTo(parent);
    WriteAll(fd, DialBytes(net::NewNonce()));
    open.push_back(fd);
    if (i % 32 == 31) net::testing::CloseThoseClosedByPeer(&open);
    if (i == kFlood / 3) ExpectOk(Sender<int>(child).send(1), "attacker: go to the child");
  }
  // The trickle, behind the flood (so that the flood does not evict it): a
  // dial, then a proof one byte at a time, never finished.
  int trickle = ConnectTo(parent);
  WriteAll(trickle, DialBytes(net::NewNonce()));
  net::HelloMessage proof;
  proof.kind = net::HelloKind::kProof;
  std::string trickled = net::EncodeHello(proof);
  trickled.pop_back();
  size_t trickle_at = 0;
  // Everything the parent has accepted beyond its bound it has closed.
  absl::Time limit_at = absl::Now() + absl::Seconds(20);
  do {
    net::testing::CloseThoseClosedByPeer(&open);
  } while (open.size() > 64 && absl::Now() < limit_at);
  Expect(open.size() <= 64, absl::StrCat(open.size(), " unproved connections are still open"));
  for (int fd : open) close(fd);
  // The trickle goes on until the parent's hello bound closes it (5 s;
  // the proof is 83 bytes at 10 a second).
  while (trickle_at < trickled.size()) {
    pollfd p{trickle, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) break;
    WriteAll(trickle, trickled.substr(trickle_at++, 1));
  }
  std::string got = ReadUntilClosed(trickle, "trickle");
  Expect(got.size() == net::HelloSize(net::HelloKind::kChallenge), "the trickle got more than a challenge");
  ExpectOk(Sender<int>(parent).send(1), "attacker: done");
  Report(absl::StrCat("flood: ", kFlood, " connections, at most 64 held; the trickle was closed"));
}

int Flood() { return SurviveAttack(FloodingAttacker, "flood: the child's value arrived"); }

}  // namespace

int RunIntruderScenario(const std::string& name, int argc, char** argv) {
  if (name == "forged_child") return ForgedChild();
  if (name == "flood") return Flood();
  return kUnknownScenario;
}

}  // namespace channel_scenarios
