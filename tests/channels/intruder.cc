#include "tests/channels/intruder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/channels/scenarios_util.h"

namespace channel_scenarios {

using namespace constellation;

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

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

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

std::string DialBytes(const net::Nonce& nonce) {
  net::HelloMessage dial;
  dial.kind = net::HelloKind::kDial;
  dial.nonce = nonce;
  return net::EncodeHello(dial);
}

Intrusion Intrude(const Pid& target, const Pid& from, const Pid& to, const std::string& secret,
                  const std::string& after, bool half_close) {
  Intrusion in;
  int fd = ConnectTo(target);
  net::Nonce nonce = net::NewNonce();
  WriteAll(fd, DialBytes(nonce));
  const size_t want = net::HelloSize(net::HelloKind::kChallenge);
  while (in.challenge.size() < want) {
    char buf[64];
    ssize_t r = read(fd, buf, want - in.challenge.size());
    if (r < 0 && errno == EINTR) continue;
    Expect(r > 0, "no challenge for a well-formed dial");
    in.challenge.append(buf, static_cast<size_t>(r));
  }
  net::HelloMessage challenge;
  ExpectOk(net::DecodeHello(in.challenge.data(), in.challenge.size(), &challenge), "the challenge");
  Expect(challenge.kind == net::HelloKind::kChallenge, "the reply to a dial is not a challenge");
  net::HelloMessage proof;
  proof.kind = net::HelloKind::kProof;
  proof.from = from;
  proof.to = to;
  proof.mac = net::DialerMac(secret, nonce, challenge.nonce, from, to);  // empty secret: a random MAC
  WriteAll(fd, net::EncodeHello(proof) + after);
  if (half_close) shutdown(fd, SHUT_WR);
  in.rest = ReadUntilClosed(fd, "intrusion");
  if (in.rest.size() >= net::kHelloPrefixSize) {
    absl::StatusOr<size_t> size = net::DecodeHelloPrefix(in.rest.data());
    net::HelloMessage verdict;
    if (size.ok() && in.rest.size() >= *size && net::DecodeHello(in.rest.data(), *size, &verdict).ok()) {
      in.verdict = verdict.kind;
    }
  }
  return in;
}

}  // namespace channel_scenarios
