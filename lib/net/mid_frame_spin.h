#pragma once

// MidFrameSpin: whether a thread blocked in recv, with part of a frame read,
// looks at its socket again instead of sleeping. On by default, unlike
// busy-polling (busy_poll.h), because it spins only while a frame is arriving
// and stops by itself when its bytes come slowly.
//
// Why: a sender writes a frame whole (one writev), so once part of it has
// arrived the rest is on its way. On loopback and fast links it comes in
// pieces (64 KiB on loopback) microseconds apart, and a receiver that sleeps
// between them has the sending CPU wake it for each: a cross-CPU wake-up
// that costs the sender more than the copy on a VM. With it, 1 MiB values
// ran at 80-85% of raw TCP (whose receiver sleeps as often, but holds no
// lock the sender waits on, see docs/performance.md); without it, ahead.
//
// The bound: it spins in windows of kWindowNs. A window in which at least
// kWindowBytes arrived opens another; one in which fewer did ends the
// spinning for the rest of the wait. So a slow or stalled peer costs one
// window per wait, and only one sending kWindowBytes per window or more (320
// MB/s; a 1 Gb/s link brings 6 KB in 50 µs) keeps a receiver spinning, and
// only while it sends. The caller yields the CPU between two looks, so a
// sender sharing the CPU runs.
//
// Threading: thread-compatible; one per wait, on the waiting thread's stack.

#include <cstddef>
#include <cstdint>

namespace constellation::net {

class MidFrameSpin {
 public:
  static constexpr int64_t kWindowNs = 50'000;
  static constexpr size_t kWindowBytes = 16 << 10;

  // `bytes` more were read from the socket.
  void Arrived(size_t bytes) { bytes_ += bytes; }

  // Whether to look at the socket again rather than sleep, at `now_ns` (a
  // monotonic clock): the first call opens a window.
  bool Spin(int64_t now_ns) {
    if (gave_up_) return false;
    if (until_ns_ == 0 || bytes_ >= kWindowBytes) {
      until_ns_ = now_ns + kWindowNs;
      bytes_ = 0;
      return true;
    }
    if (now_ns < until_ns_) return true;
    gave_up_ = true;
    return false;
  }

 private:
  int64_t until_ns_ = 0;  // the open window's end; 0 before the first
  size_t bytes_ = 0;      // read since the window opened
  bool gave_up_ = false;
};

}  // namespace constellation::net
