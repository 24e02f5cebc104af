#include "lib/net/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/time/clock.h"
#include "lib/net/peer.h"

namespace constellation::net::testing {

Listener Listen(uint32_t nonce) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("test listen");
    std::abort();
  }
  return Listener{fd, Pid::FromIpv4(0x7f000001, ntohs(addr.sin_port), nonce)};
}

std::string TestSecret() { return std::string(kSecretSize, 's'); }

DataPlane::Options TestOptions() {
  DataPlane::Options options;
  options.secret = TestSecret();
  options.limits.max_bytes = 64 << 10;
  options.limits.max_frames = 64;
  options.idle_timeout = absl::Seconds(60);  // tests that want teardown set it
  options.handshake_timeout = absl::Seconds(20);
  options.exit_flush_timeout = absl::Seconds(20);
  return options;
}

std::unique_ptr<DataPlane> MakePlane(uint32_t nonce, DataPlane::Options options) {
  Listener l = Listen(nonce);
  return std::make_unique<DataPlane>(l.fd, l.pid, options);
}

int RawConnect(const Pid& pid) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(pid.port());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

absl::StatusOr<HelloMessage> ReadHello(int fd) {
  char bytes[kMaxHelloSize];
  size_t want = kHelloPrefixSize;
  size_t got = 0;
  while (got < want) {
    ssize_t n = read(fd, bytes + got, want - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("connection closed");
    got += static_cast<size_t>(n);
    if (got == kHelloPrefixSize) {
      absl::StatusOr<size_t> size = DecodeHelloPrefix(bytes);
      if (!size.ok()) return size.status();
      want = *size;
    }
  }
  HelloMessage message;
  absl::Status status = DecodeHello(bytes, want, &message);
  if (!status.ok()) return status;
  return message;
}

RawHello RawDial(const Pid& target, const Pid& from, const Pid& to, const std::string& secret,
                 const std::string& after_proof) {
  RawHello r;
  r.fd = RawConnect(target);
  if (r.fd < 0) return r;
  HelloMessage dial;
  dial.kind = HelloKind::kDial;
  dial.nonce = NewNonce();
  if (!WriteAll(r.fd, EncodeHello(dial))) return r;
  absl::StatusOr<HelloMessage> challenge = ReadHello(r.fd);
  if (!challenge.ok() || challenge->kind != HelloKind::kChallenge) {
    r.verdict = challenge.ok() ? absl::InternalError("no challenge") : challenge.status();
    return r;
  }
  r.challenge = *challenge;
  HelloMessage proof;
  proof.kind = HelloKind::kProof;
  proof.from = from;
  proof.to = to;
  proof.mac = DialerMac(secret, dial.nonce, challenge->nonce, from, to);
  if (!WriteAll(r.fd, EncodeHello(proof) + after_proof)) return r;
  r.verdict = ReadHello(r.fd);
  return r;
}

int RawAccept(int listen_fd, const Pid& self, const std::string& secret) {
  pollfd p{listen_fd, POLLIN, 0};
  if (poll(&p, 1, 30'000) != 1) return -1;
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return -1;
  absl::StatusOr<HelloMessage> dial = ReadHello(fd);
  HelloMessage challenge;
  challenge.kind = HelloKind::kChallenge;
  challenge.nonce = NewNonce();
  if (dial.ok() && dial->kind == HelloKind::kDial) challenge.mac = AcceptorMac(secret, dial->nonce, challenge.nonce);
  absl::StatusOr<HelloMessage> proof = absl::UnknownError("no challenge sent");
  if (dial.ok() && dial->kind == HelloKind::kDial && WriteAll(fd, EncodeHello(challenge))) proof = ReadHello(fd);
  if (!proof.ok() || proof->kind != HelloKind::kProof) {
    close(fd);
    return -1;
  }
  HelloMessage verdict;
  verdict.kind = HelloKind::kAccept;
  verdict.from = self;
  verdict.mac = VerdictMac(secret, dial->nonce, challenge.nonce, proof->from, self, HelloKind::kAccept);
  if (!WriteAll(fd, EncodeHello(verdict))) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string HeaderBytes(FrameKind kind, uint64_t length, uint64_t fingerprint) {
  char bytes[kFrameHeaderSize];
  EncodeFrameHeader(FrameHeader{kind, kChannelForward, fingerprint, 0}, bytes);
  std::memcpy(bytes + 16, &length, 8);
  return std::string(bytes, sizeof(bytes));
}

std::string ReadUntilClosed(int fd) {
  std::string got;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, 30'000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      got += kStillOpen;
      break;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return got;
}

void CloseThoseClosedByPeer(std::vector<int>* open) {
  std::vector<int> still;
  for (int fd : *open) {
    pollfd p{fd, POLLIN, 0};
    bool gone = false;
    if (poll(&p, 1, 0) > 0) {
      char buf[256];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
      }
      gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    if (gone) {
      close(fd);
    } else {
      still.push_back(fd);
    }
  }
  open->swap(still);
}

bool WaitUntilUserReading(Peer& peer) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!peer.UserReading()) {
    if (absl::Now() >= give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace constellation::net::testing
