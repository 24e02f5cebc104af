// Channel scenarios (scenarios.h) with peers that are not what a channel
// expects: garbage and bad hellos sent to a process's data port from outside
// the program, bad frames from a process of the program (an insider: it holds
// the secret), and channels to pids that name no live process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "constellation/constellation.h"
#include "lib/net/frame.h"
#include "lib/net/handshake.h"
#include "lib/process/runtime_state.h"
#include "tests/channels/intruder.h"
#include "tests/channels/scenarios.h"
#include "tests/channels/scenarios_util.h"

using namespace constellation;

namespace channel_scenarios {
namespace {

// ---- hostile: connections from outside the program do not disturb it ----------------------

// A partner ping-pongs with the parent while an attacker connects to the
// parent's data port with garbage, bad hellos and bad frames.
void HostilePartner(Pid parent) {
  Receiver<int64_t> in(parent);
  Sender<int64_t> out(parent);
  while (true) {
    int64_t v = Get(in.recv(), "partner recv");
    if (v < 0) break;
    ExpectOk(out.send(v + 1), "partner send");
  }
}

void HostileAttacker(Pid parent) {
  int attacks = 0;
  auto fake = [](uint32_t nonce) { return Pid::FromIpv4(0x7f000001, 9, nonce); };
  const std::string& secret = process_internal::runtime().secret;  // an insider's
  {                                                                // a port scan: connect and close
    close(ConnectTo(parent));
    ++attacks;
  }
  {  // garbage
    int fd = ConnectTo(parent);
    WriteAll(fd, std::string(200, '\x5a'));
    ReadUntilClosed(fd, "garbage");
    ++attacks;
  }
  {  // a half hello, then close
    int fd = ConnectTo(parent);
    WriteAll(fd, DialBytes(net::NewNonce()).substr(0, 20));
    shutdown(fd, SHUT_WR);
    ReadUntilClosed(fd, "half hello");
    ++attacks;
  }
  {  // an outsider's hello for another process (the right address and port, another nonce): nothing comes back
    Pid other(parent.addr(), parent.port(), parent.nonce() ^ 1);
    Intrusion in = Intrude(parent, fake(2), other, "", "");
    Expect(!in.verdict.has_value(), "wrong pid: an outsider got a verdict");
    ++attacks;
  }
  {  // an insider's hello for another process: told kWrongPid
    Pid other(parent.addr(), parent.port(), parent.nonce() ^ 1);
    Intrusion in = Intrude(parent, fake(2), other, secret, "");
    Expect(in.verdict == net::HelloKind::kWrongPid, "wrong pid: no kWrongPid verdict for a process of the program");
    ++attacks;
  }
  {  // a frame claiming 10 GiB
    Intrusion in = Intrude(parent, fake(3), parent, secret,
                           HeaderBytes(net::FrameKind::kData, 0, 1, uint64_t{10} << 30) + std::string(1000, 'x'));
    Expect(in.verdict == net::HelloKind::kAccept, "10 GiB frame: no accept");
    ++attacks;
  }
  {  // an unknown frame kind
    std::string h = HeaderBytes(net::FrameKind::kData, 0, 1, 4);
    h[0] = 9;
    Intrusion in = Intrude(parent, fake(4), parent, secret, h + "abcd");
    Expect(in.verdict == net::HelloKind::kAccept, "bad kind: no accept");
    ++attacks;
  }
  {  // a truncated frame: 100 bytes claimed, 10 sent, then EOF
    Intrusion in = Intrude(parent, fake(5), parent, secret,
                           HeaderBytes(net::FrameKind::kData, 0, 1, 100) + std::string(10, 'y'), /*half_close=*/true);
    Expect(in.verdict == net::HelloKind::kAccept, "truncated frame: no accept");
    ++attacks;
  }
  ExpectOk(Sender<int>(parent).send(attacks), "attacker send done");
  Report(absl::StrCat("attacker made ", attacks, " hostile connections"));
}

int Hostile() {
  Pid partner = Spawn(HostilePartner);
  Sender<int64_t> to_partner(partner);
  Receiver<int64_t> from_partner(partner);
  Pid attacker = Spawn(HostileAttacker);
  Receiver<int> from_attacker(attacker);
  int64_t rounds = 0;
  auto ping = [&] {
    ExpectOk(to_partner.send(rounds), "send to partner");
    int64_t v = Get(from_partner.recv(), "recv from partner");
    Expect(v == rounds + 1, absl::StrCat("partner round ", rounds, ": ", v));
    ++rounds;
  };
  // Keep the partner channel busy until the attacker is done.
  std::optional<int> attacks;
  while (!attacks.has_value()) {
    ping();
    absl::StatusOr<int> done = from_attacker.try_recv();
    if (done.ok())
      attacks = *done;
    else
      Expect(absl::IsDeadlineExceeded(done.status()), "recv from attacker: " + done.status().ToString());
    Expect(rounds < 10'000'000, "the attacker never finished");
  }
  for (int i = 0; i < 100; ++i) ping();
  ExpectOk(to_partner.send(-1), "stop partner");
  ExpectGone(from_partner, "recv after the partner returned");
  ExpectGone(from_attacker, "recv after the attacker returned");
  uint64_t rss = Rss();
  Expect(rss < uint64_t{1} << 30, absl::StrCat("RSS is ", rss, " bytes after a frame claimed 10 GiB"));
  Report(absl::StrCat("hostile: survived ", *attacks, " attacks; ", rounds, " partner rounds; RSS ", rss / kOneMiB,
                      " MiB"));
  return 0;
}

// ---- bogus_pid: channels to pids that name no live process -------------------------------

void ReturnAtOnce(Pid parent) {}

// Sends until the Sender reports the peer unusable (bounded), then checks recv.
void ExpectNoSuchProcess(const Pid& bogus, const std::string& what) {
  {
    Sender<int> out(bogus);
    absl::Status status;
    int attempts = 0;
    absl::Time limit = absl::Now() + absl::Seconds(30);
    while ((status = out.send_for(attempts, absl::Seconds(30))).ok()) {
      Expect(++attempts < 100000 && absl::Now() < limit, what + ": send kept succeeding");
    }
    Expect(absl::IsUnavailable(status), what + ": send: " + status.ToString());
  }
  Receiver<int> in(bogus);
  absl::StatusOr<int> v = in.recv_for(absl::Seconds(30));
  Expect(absl::IsUnavailable(v.status()), what + ": recv: " + v.status().ToString());
}

int BogusPid() {
  Pid live = Spawn(HostilePartner);  // stays until told to stop
  // The live process's address and port with another nonce: it answers "wrong pid".
  ExpectNoSuchProcess(Pid(live.addr(), live.port(), live.nonce() ^ 0x5a5a), "wrong nonce");
  // A process that has exited: its port refuses.
  Pid gone = Spawn(ReturnAtOnce);
  {
    Receiver<int> watch(gone);
    ExpectGone(watch, "recv from the returned child");
  }
  ExpectNoSuchProcess(Pid(gone.addr(), gone.port(), gone.nonce() ^ 1), "exited process's port");
  // The live process is not disturbed by any of this.
  Sender<int64_t> to_live(live);
  Receiver<int64_t> from_live(live);
  ExpectOk(to_live.send(41), "send to live");
  Expect(Get(from_live.recv(), "recv from live") == 42, "live answer");
  ExpectOk(to_live.send(-1), "stop live");
  ExpectGone(from_live, "recv after the live child returned");
  Report("bogus pids report kUnavailable");
  return 0;
}

}  // namespace

int RunHostileScenario(const std::string& name, int argc, char** argv) {
  if (name == "hostile") return Hostile();
  if (name == "bogus_pid") return BogusPid();
  return kUnknownScenario;
}

}  // namespace channel_scenarios
