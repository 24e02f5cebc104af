#pragma once

// Internal to Peer (peer.cc, peer_read.cc): buffer recycling and read-path
// helpers. Not for other users.

#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lib/net/spare_buffers.h"

namespace constellation::net::peer_internal {

constexpr int kMaxIov = 128;
// Slots kept free for the loop's control frames.
constexpr size_t kControlReserve = 2;
// Queue slots an idle peer keeps (per direction): the queues grow from this
// with traffic, doubling, and shrink back when idle (Ring, ReleaseIdleMemory).
constexpr size_t kInitialSlots = 4;
// Buffers are recycled, not freed, so the steady state allocates nothing per
// message: a ring slot keeps a buffer up to SpareBuffers::kSmall (1024 slots:
// 16 MiB at most per direction), and each direction's SpareBuffers keep bigger
// ones: as many as its queue's byte bound and one value up to it hold
// (kOneValue), so a stream of big values reuses them. An idle peer gives them
// back (ReleaseIdleMemory).
constexpr size_t kOneValue = (4 << 20) + (64 << 10);
// A payload at least this big is written from the sender's memory when the
// connection is free (Peer::SendParts): below it, copying costs less than
// giving up the stream's batching.
constexpr size_t kInPlaceMin = 16 << 10;
// The rest of such a payload that the socket did not take is written from
// the sender's memory while send waits, as long as the connection takes some
// of it every kLendPatience; then it is copied and send returns
// (Peer::AwaitLentLocked).
constexpr absl::Duration kLendPatience = absl::Milliseconds(1);

// Empties a buffer leaving a queue: it stays if small, else goes to the
// spares (or is freed if they are full).
inline void ClearBuffer(std::string* buffer, SpareBuffers* spares) {
  buffer->clear();
  spares->Give(buffer);
}

// User mode (see ReadAsUser) follows a recv that held the read role at most
// kStickyHoldNs: a ping-pong, a stream, also one of big values whose recv
// waits for most of each value's bytes (at 0.5 ms, a 1 MiB stream on one core
// went back to the loop after most values, which then read the next and woke
// the receiver: twice the context switches). The loop's lease timer looks
// every kLeasePeriod whether recvs keep coming; it ends while a recv holds
// the role, and that recv starts it again if it leaves user mode on. A recv
// that held the role longer (a wait on an idle channel) gives the socket
// back itself.
constexpr int64_t kStickyHoldNs = 5'000'000;
constexpr absl::Duration kLeasePeriod = absl::Milliseconds(1);
// A user thread sleeps in recv itself, bounded by SO_RCVTIMEO, only while its
// deadline is at least kRecvTimeoutMin away, and aims to end
// kRecvTimeoutSlack before it: the kernel rounds SO_RCVTIMEO up to a tick (at
// most 10 ms) and its timer wheel by up to 1/8 (see HowToSleep). Closer to the
// deadline it sleeps in ppoll.
constexpr absl::Duration kRecvTimeoutMin = absl::Milliseconds(50);
constexpr absl::Duration kRecvTimeoutSlack = absl::Milliseconds(20);

// Sets which events of `fd` (registered in the epoll set `ep`) are watched.
inline void SetInterest(int ep, int fd, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &event);  // cannot fail: fd stays registered while ep is open
}

// A monotonic clock for the hot paths' own intervals (batching, user mode,
// busy-polling). clock_gettime(CLOCK_MONOTONIC) is a vDSO call; on the VMs we
// measure on, absl::GetCurrentTimeNanos costs 3-4x as much (100-150 ns), and a
// send read it on every message.
inline int64_t MonotonicNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// Busy-polling (busy_poll.h): a waiting receiver spins until `until_ns`
// (MonotonicNs) before it sleeps; 0 until the first wait sets it.
// True while the spin lasts (and `deadline` is ahead); the first call starts it.
// Every later call yields the CPU first (as Open MPI's yield_when_idle): when
// the thread that will answer (the sender, or our own loop) shares this CPU,
// a pure spin would only keep it from running; with the CPU to ourselves,
// sched_yield returns at once.
inline bool Spinning(int64_t* until_ns, int64_t spin_ns, absl::Time deadline) {
  if (spin_ns <= 0) return false;
  if (*until_ns != 0) sched_yield();
  const int64_t now = MonotonicNs();
  if (*until_ns == 0) *until_ns = now + spin_ns;
  return now < *until_ns && (deadline == absl::InfiniteFuture() || absl::Now() < deadline);
}

// Waits until `fd` is readable (or has an error or EOF, which recv reports);
// false at `deadline`.
inline bool PollReadable(int fd, absl::Time deadline) {
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int n;
    if (deadline == absl::InfiniteFuture()) {
      n = poll(&p, 1, -1);
    } else {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      timespec timeout = absl::ToTimespec(left);
      n = ppoll(&p, 1, &timeout, nullptr);
    }
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let recv report it
  }
}

}  // namespace constellation::net::peer_internal
