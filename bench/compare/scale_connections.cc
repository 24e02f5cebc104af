// --scale=connections --n=N: the memory one idle connection costs at each
// end, measured as real processes hold them. This process (the hub, one
// DataPlane) opens a channel pair to each of N other processes (each its own
// DataPlane) and exchanges one value each way on each. The others are forked
// before the hub's loop thread starts, so each process has one data plane as
// a program's processes do. (With every plane in one process, each plane's
// libevent base keeps a map as wide as the process's highest fd, which made
// a connection look 10 KiB dearer than it is.)
//
// Heap bytes in use (glibc's count) and anonymous RSS are read at each end right after
// the exchange ("busy") and once the connections were quiet for two ticks of
// the stall check, which gives idle memory back (here every 0.25 s; by
// default every 7.5 s). The hub's figures are its growth over N connections,
// divided by N; the other end's, the growth of its second connection (the
// first, to another data plane of the hub's process, pays what a process's
// first connection costs once), averaged over the N processes.
#include "bench/compare/scale_connections.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "lib/core/codec.h"
#include "lib/net/channel.h"
#include "lib/net/data_plane.h"
#include "lib/net/handshake.h"

namespace compare {
namespace {

using constellation::Pid;
using constellation::Receiver;
using constellation::Sender;
using constellation::net::DataPlane;

constexpr absl::Duration kTimeout = absl::Seconds(60);
constexpr auto kQuiet = std::chrono::milliseconds(800);  // two ticks of the stall check or more

struct Memory {
  double heap_kib = 0;
  double rss_kib = 0;
};

// Heap in use and anonymous RSS (RssAnon: the code a first connection runs
// maps file pages that every process shares, which are not its cost).
Memory Now() {
  struct mallinfo2 m = mallinfo2();
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) Die("cannot read /proc/self/status");
  char line[256];
  long anon_kib = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::sscanf(line, "RssAnon: %ld kB", &anon_kib) == 1) break;
  }
  std::fclose(f);
  if (anon_kib < 0) Die("no RssAnon in /proc/self/status");
  return Memory{static_cast<double>(m.uordblks + m.hblkhd) / 1024, static_cast<double>(anon_kib)};
}

Memory Growth(const Memory& before, const Memory& after, double per) {
  return Memory{(after.heap_kib - before.heap_kib) / per, (after.rss_kib - before.rss_kib) / per};
}

std::unique_ptr<DataPlane> Plane(uint32_t nonce) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 1024) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Die("cannot listen on 127.0.0.1");
  }
  DataPlane::Options options;
  options.secret = std::string(constellation::net::kSecretSize, 'b');
  options.idle_timeout = absl::Hours(1);             // channels stay open: no teardown
  options.stall_timeout = absl::Milliseconds(1000);  // its check (and release) every 0.25 s
  return std::make_unique<DataPlane>(fd, Pid::FromIpv4(0x7f000001, ntohs(addr.sin_port), nonce), options);
}

// Pipes between the hub and one other process: length-prefixed messages.
void Put(int fd, const std::string& bytes) {
  const uint32_t size = static_cast<uint32_t>(bytes.size());
  std::string message(reinterpret_cast<const char*>(&size), sizeof(size));
  message += bytes;
  if (write(fd, message.data(), message.size()) != static_cast<ssize_t>(message.size())) Die("pipe write");
}

bool ReadFull(int fd, char* p, size_t size) {
  while (size > 0) {
    ssize_t n = read(fd, p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

std::string Get(int fd) {
  uint32_t size = 0;
  if (!ReadFull(fd, reinterpret_cast<char*>(&size), sizeof(size)) || size > (1 << 20)) Die("pipe read");
  std::string bytes(size, '\0');
  if (!ReadFull(fd, bytes.data(), size)) Die("pipe read");
  return bytes;
}

template <class T>
T Decode(const std::string& bytes) {
  absl::StatusOr<T> value = constellation::decode<T>(bytes);
  DieIf(value.status(), "decode");
  return *std::move(value);
}

// A channel pair to `remote` with one value exchanged; `first` sends first.
struct Link {
  Link(const Pid& remote, DataPlane& plane, bool first) : out(remote, plane), in(remote, plane) {
    if (first) DieIf(out.send(1), "send");
    DieIf(in.recv_for(kTimeout).status(), "recv");
    if (!first) DieIf(out.send(1), "send");
  }
  Sender<uint64_t> out;
  Receiver<uint64_t> in;
};

// One other process: tells the hub its pid; opens a first connection (to the
// hub process's second data plane, `warm`), which pays what a process's first
// connection costs once (its loop thread's malloc arena, code pages); waits
// until it is idle; then opens the measured one to the hub, reports its
// growth busy and idle, and waits for the hub to end it.
[[noreturn]] void Other(int from_hub, int to_hub, uint32_t nonce) {
  std::unique_ptr<DataPlane> plane = Plane(nonce);
  Put(to_hub, constellation::encode(plane->self()));
  const Pid warm = Decode<Pid>(Get(from_hub));
  Link first(warm, *plane, /*first=*/true);
  std::this_thread::sleep_for(kQuiet);
  Put(to_hub, "warm");
  const Pid hub = Decode<Pid>(Get(from_hub));
  const Memory before = Now();
  {
    Link measured(hub, *plane, /*first=*/true);
    const Memory busy = Growth(before, Now(), 1);
    std::this_thread::sleep_for(kQuiet);
    const Memory idle = Growth(before, Now(), 1);
    Put(to_hub, constellation::encode(std::vector<double>{busy.heap_kib, busy.rss_kib, idle.heap_kib, idle.rss_kib}));
    Get(from_hub);  // the hub is done
  }
  plane.reset();
  _exit(0);
}

}  // namespace

void Connections(const Args& args, int64_t n) {
  struct Child {
    pid_t pid;
    int to;    // the hub writes
    int from;  // the hub reads
  };
  std::vector<Child> children;
  for (int64_t i = 0; i < n; ++i) {
    int down[2], up[2];
    if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0) Die("pipe");
    pid_t pid = fork();
    if (pid < 0) Die("fork");
    if (pid == 0) {
      for (const Child& c : children) close(c.to), close(c.from);
      close(down[1]);
      close(up[0]);
      Other(down[0], up[1], static_cast<uint32_t>(i + 2));
    }
    close(down[0]);
    close(up[1]);
    children.push_back(Child{pid, down[1], up[0]});
  }
  std::unique_ptr<DataPlane> hub = Plane(1);
  std::unique_ptr<DataPlane> warm = Plane(0x7fff0000);  // the others' first connections
  std::vector<Pid> others;
  for (const Child& c : children) others.push_back(Decode<Pid>(Get(c.from)));
  const std::string warm_pid = constellation::encode(warm->self());
  for (const Child& c : children) Put(c.to, warm_pid);
  std::vector<std::unique_ptr<Link>> warm_links;
  for (const Pid& other : others) warm_links.push_back(std::make_unique<Link>(other, *warm, /*first=*/false));
  for (const Child& c : children) Get(c.from);  // its first connection is idle
  std::this_thread::sleep_for(kQuiet);          // and ours
  const Memory before = Now();
  std::vector<Sender<uint64_t>> out;
  std::vector<Receiver<uint64_t>> in;
  for (int64_t i = 0; i < n; ++i) {
    out.emplace_back(others[i], *hub);
    in.emplace_back(others[i], *hub);
  }
  const std::string hub_pid = constellation::encode(hub->self());
  for (const Child& c : children) Put(c.to, hub_pid);
  for (auto& s : out) DieIf(s.send(1), "send");
  for (auto& r : in) DieIf(r.recv_for(kTimeout).status(), "recv");
  const Memory busy = Growth(before, Now(), static_cast<double>(n));
  std::this_thread::sleep_for(kQuiet);
  const Memory idle = Growth(before, Now(), static_cast<double>(n));
  std::vector<double> other(4, 0.0);
  for (const Child& c : children) {
    std::vector<double> figures = Decode<std::vector<double>>(Get(c.from));
    if (figures.size() != 4) Die("bad report from another process");
    for (size_t k = 0; k < 4; ++k) other[k] += figures[k] / static_cast<double>(n);
  }
  for (const Child& c : children) {
    Put(c.to, "");
    close(c.to);
  }
  for (const Child& c : children) {
    close(c.from);
    DieIf(WaitChild(c.pid), "another process");
  }
  WriteResult(args, absl::StrFormat("\"connections\":%d,\"hub_busy_heap_kib\":%.2f,\"hub_busy_rss_kib\":%.2f,"
                                    "\"hub_idle_heap_kib\":%.2f,\"hub_idle_rss_kib\":%.2f,"
                                    "\"other_busy_heap_kib\":%.2f,\"other_busy_rss_kib\":%.2f,"
                                    "\"other_idle_heap_kib\":%.2f,\"other_idle_rss_kib\":%.2f",
                                    n, busy.heap_kib, busy.rss_kib, idle.heap_kib, idle.rss_kib, other[0], other[1],
                                    other[2], other[3]));
  // Channels first, then the planes they use.
  out.clear();
  in.clear();
  warm_links.clear();
}

}  // namespace compare
