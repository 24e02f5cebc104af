#pragma once

// SendBursts: who writes a Peer's send that finds its connection idle: the
// sending thread, at once, or the loop, together with the sends that follow
// (Peer::QueueLocked).
//
// Sends in quick succession with nothing received in between are a burst: a
// one-way stream, a round of an all-to-all. Its first send starts a window of
// kWindowNs; the sends inside it are left to pile up for the loop's one
// writev, instead of one syscall each. The first send is written at once, so
// that a ping-pong (whose bursts are single sends) never waits for a wake-up
// of the loop -- unless the last burst had more sends and something was
// received since: then this burst likely has more too (all-to-all rounds,
// requests in parts), and its first send goes with the others. Writing it
// alone was half the syscalls of an all-to-all of 64 processes. A wrong guess
// delays one single send by a wake-up of the loop, and the burst after it is
// written at once again. A one-way stream, whose window runs out with nothing
// received, keeps writing from the sending thread: handing those writes to
// the loop too cost unpinned streams up to a third of their rate.
//
// Threading: thread-compatible; the Peer's send_mu_ guards it.

#include <cstdint>

namespace constellation::net {

class SendBursts {
 public:
  static constexpr int64_t kWindowNs = 50'000;

  enum class Write { kNow, kByTheLoop };

  // A send found the connection idle at `now_ns` (a monotonic clock), with
  // `deliveries` frames received from the peer so far.
  Write Decide(int64_t now_ns, uint64_t deliveries) {
    if (now_ns - start_ns_ < kWindowNs && deliveries == deliveries_at_start_) {
      ++sends_;
      return Write::kByTheLoop;
    }
    const bool more_expected = sends_ > 1 && deliveries != deliveries_at_start_;
    Start(now_ns, deliveries);
    sends_ = 1;
    return more_expected ? Write::kByTheLoop : Write::kNow;
  }
  // A send found a write of the queue already coming: it joins the burst.
  void Joined() { ++sends_; }
  // A big payload was written from the caller's memory (Peer::SendParts):
  // small sends right after it are batched behind it.
  void Start(int64_t now_ns, uint64_t deliveries) {
    start_ns_ = now_ns;
    deliveries_at_start_ = deliveries;
  }

 private:
  int64_t start_ns_ = 0;  // the window's start; 0: none yet (a first send is written at once)
  uint64_t deliveries_at_start_ = 0;
  uint64_t sends_ = 0;  // in the burst since the window started
};

}  // namespace constellation::net
