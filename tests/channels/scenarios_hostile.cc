// Channel scenarios (scenarios.h) with peers that are not what a channel
// expects: garbage, bad hellos and bad frames sent to a process's data port
// from outside the program, and channels to pids that name no live process.
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

int ConnectTo(const Pid& target) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string ip = target.ip_string();
  if (target.is_ipv4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(target.port());
    Expect(inet_pton(AF_INET, ip.c_str(), &a->sin_addr) == 1, "address " + ip);
    len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(target.port());
    Expect(inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) == 1, "address " + ip);
    len = sizeof(sockaddr_in6);
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Expect(fd >= 0, "socket");
  Expect(connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0,
         absl::StrCat("connect to ", target.to_full_string(), ": ", std::strerror(errno)));
  return fd;
}

// Best effort: the attacked process may close the connection before it has all of it.
void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Reads until the peer closes the connection (EOF or reset); returns what it
// sent first. Fails if it stays open for 20 s.
std::string ReadUntilClosed(int fd, const std::string& what) {
  std::string got;
  absl::Time limit = absl::Now() + absl::Seconds(20);
  while (true) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(limit - absl::Now()));
    Expect(left > 0, what + ": the parent kept the connection open for 20 s");
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r > 0) {
      got.append(buf, r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    close(fd);
    return got;  // EOF or an error (reset): closed
  }
}

std::string HelloBytes(net::HelloKind kind, const Pid& from, const Pid& to) {
  char buf[net::kHelloSize];
  net::EncodeHello(net::Hello{kind, from, to}, buf);
  return std::string(buf, sizeof(buf));
}

std::string HeaderBytes(net::FrameKind kind, uint8_t channel, uint64_t fingerprint, uint64_t length) {
  net::FrameHeader h;
  h.kind = kind;
  h.channel = channel;
  h.fingerprint = fingerprint;
  h.length = length;
  char buf[net::kFrameHeaderSize];
  net::EncodeFrameHeader(h, buf);
  return std::string(buf, sizeof(buf));
}

// Dials `target` as the (made-up) process `from`, expects its accept.
int DialAs(const Pid& target, const Pid& from, const std::string& what) {
  int fd = ConnectTo(target);
  WriteAll(fd, HelloBytes(net::HelloKind::kDial, from, target));
  std::string reply;
  while (reply.size() < net::kHelloSize) {
    char buf[net::kHelloSize];
    ssize_t r = read(fd, buf, net::kHelloSize - reply.size());
    if (r < 0 && errno == EINTR) continue;
    Expect(r > 0, what + ": no accept for a well-formed hello");
    reply.append(buf, r);
  }
  net::Hello hello;
  ExpectOk(net::DecodeHello(reply.data(), &hello), what + ": the reply hello");
  Expect(hello.kind == net::HelloKind::kAccept, absl::StrCat(what, ": reply kind ", static_cast<int>(hello.kind)));
  Expect(hello.from == target, what + ": the reply names another process");
  return fd;
}

void HostileAttacker(Pid parent) {
  int attacks = 0;
  auto fake = [](uint32_t nonce) { return Pid::FromIpv4(0x7f000001, 9, nonce); };
  {  // a port scan: connect and close
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
    WriteAll(fd, HelloBytes(net::HelloKind::kDial, fake(1), parent).substr(0, 20));
    shutdown(fd, SHUT_WR);
    ReadUntilClosed(fd, "half hello");
    ++attacks;
  }
  {  // a hello for another process (the right address and port, another nonce)
    int fd = ConnectTo(parent);
    Pid other(parent.addr(), parent.port(), parent.nonce() ^ 1);
    WriteAll(fd, HelloBytes(net::HelloKind::kDial, fake(2), other));
    std::string got = ReadUntilClosed(fd, "wrong pid");
    if (got.size() >= net::kHelloSize) {
      net::Hello hello;
      ExpectOk(net::DecodeHello(got.data(), &hello), "wrong-pid reply");
      Expect(hello.kind == net::HelloKind::kWrongPid,
             absl::StrCat("wrong-pid reply kind ", static_cast<int>(hello.kind)));
    }
    ++attacks;
  }
  {  // a frame claiming 10 GiB
    int fd = DialAs(parent, fake(3), "10 GiB frame");
    WriteAll(fd, HeaderBytes(net::FrameKind::kData, 0, 1, uint64_t{10} << 30));
    WriteAll(fd, std::string(1000, 'x'));
    ReadUntilClosed(fd, "10 GiB frame");
    ++attacks;
  }
  {  // an unknown frame kind
    int fd = DialAs(parent, fake(4), "bad kind");
    std::string h = HeaderBytes(net::FrameKind::kData, 0, 1, 4);
    h[0] = 9;
    WriteAll(fd, h + "abcd");
    ReadUntilClosed(fd, "bad kind");
    ++attacks;
  }
  {  // a truncated frame: 100 bytes claimed, 10 sent, then EOF
    int fd = DialAs(parent, fake(5), "truncated frame");
    WriteAll(fd, HeaderBytes(net::FrameKind::kData, 0, 1, 100) + std::string(10, 'y'));
    shutdown(fd, SHUT_WR);
    ReadUntilClosed(fd, "truncated frame");
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
