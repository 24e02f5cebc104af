#pragma once

// RecvQueue: a Peer's incoming frames (the receive side's queue state) and the
// lock that guards them, recv_mu_ in Peer's terms (see peer.h for the lock
// order and the read role). Owned by one Peer, shared by its receivers and the
// loop thread: every method but those marked otherwise needs mu() held.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "lib/net/mutex.h"
#include "lib/net/peer_internal.h"
#include "lib/net/ring.h"
#include "lib/net/spare_buffers.h"
#include "lib/net/waiter.h"

namespace constellation::net {

struct InFrame {
  uint64_t fingerprint = 0;
  std::string payload;
};

class RecvQueue {
 public:
  // At most max_frames frames and max_bytes payload bytes (one frame is
  // always admitted below the byte bound).
  RecvQueue(size_t max_frames, size_t max_bytes);
  RecvQueue(const RecvQueue&) = delete;
  RecvQueue& operator=(const RecvQueue&) = delete;

  Mutex& mu() const ABSL_LOCK_RETURNED(mu_) { return mu_; }
  CondVar& cv() { return cv_; }  // frames, failure, the read role coming free

  // Room for one more frame (always, once discarding).
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return discard_ || (!frames_.full() && bytes_ < max_bytes_);
  }
  // Queues a frame of type `fingerprint`, swapping *payload for the slot's old
  // buffer (or a spare); drops it once discarding. The caller fires the
  // waiters (once for a batch of frames) before it unlocks.
  //
  // Buffers leaving this queue are not cleared (unlike the send side's, which
  // the encoder appends to): they keep their size, their bytes stale. Only the
  // FrameReader writes into them, tracking how much a frame has filled, so the
  // kept size lets the next frame grow into it without std::string
  // zero-filling it again (a megabyte memset per big value otherwise).
  void Deliver(uint64_t fingerprint, std::string* payload) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (discard_) {
      spares_.Give(payload);
      return;
    }
    InFrame& frame = frames_.push_back();
    frame.fingerprint = fingerprint;
    frame.payload.swap(*payload);  // *payload gets the slot's old buffer
    spares_.Take(payload);
    bytes_ += frame.payload.size();
    deliveries_.fetch_add(1, std::memory_order_relaxed);
  }
  // A frame a receiver reading the socket itself takes at once (the fast
  // path): into *take, the parser's *payload getting take's old buffer.
  void TakeDirect(uint64_t fingerprint, std::string* payload, InFrame* take) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    take->fingerprint = fingerprint;
    take->payload.swap(*payload);  // the parser gets the caller's old buffer
    spares_.Give(payload);
    spares_.Take(payload);
    deliveries_.fetch_add(1, std::memory_order_relaxed);
    fast_path_frames_.fetch_add(1, std::memory_order_relaxed);
    FireWaiters();
  }
  // Takes the oldest frame into *out (swapping buffers). True when reading was
  // paused (full) and the queue has drained below half the bound: read again.
  bool Pop(InFrame* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    InFrame& frame = frames_.front();
    out->fingerprint = frame.fingerprint;
    out->payload.swap(frame.payload);
    bytes_ -= out->payload.size();
    spares_.Give(&frame.payload);
    frames_.pop_front();
    if (paused_ && frames_.size() <= frames_.capacity() / 2 && bytes_ <= max_bytes_ / 2) {
      paused_ = false;
      return true;
    }
    return false;
  }
  // Wakes select waiters (receivers on cv() are the caller's to notify).
  void FireWaiters() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Waiter* w : waiters_) w->Fire();
  }
  void AddWaiter(Waiter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { waiters_.push_back(w); }
  void RemoveWaiter(Waiter* w) ABSL_LOCKS_EXCLUDED(mu_);

  // The name a Sender of the peer announced for `fingerprint`, or "<unknown type>".
  std::string TypeName(uint64_t fingerprint) ABSL_LOCKS_EXCLUDED(mu_);
  void SetTypeName(uint64_t fingerprint, std::string name) ABSL_LOCKS_EXCLUDED(mu_);

  // The peer is gone: records `status` (the first sticks).
  void Fail(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (status_.ok()) status_ = status;
  }
  // Gives back the slots and the spares if no frame came since the last call
  // and none is queued; returns whether it was so quiet.
  bool ReleaseIdleMemory() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool empty() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return frames_.empty(); }
  const absl::Status& status() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return status_; }
  // Reading stopped because the queue was full (Pop says when to read again).
  bool paused() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return paused_; }
  void set_paused(bool paused) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { paused_ = paused; }
  // From now on, incoming frames are dropped (the process is exiting).
  bool discarding() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return discard_; }
  void Discard() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { discard_ = true; }
  size_t slots() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return frames_.capacity(); }
  size_t spare_bytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return spares_.bytes(); }
  // Any thread, no lock: frames received, ever (tells a ping-pong from a
  // stream), and those taken by TakeDirect.
  uint64_t deliveries() const { return deliveries_.load(std::memory_order_relaxed); }
  uint64_t fast_path_frames() const { return fast_path_frames_.load(std::memory_order_relaxed); }

 private:
  const size_t max_bytes_;
  mutable Mutex mu_;  // mutable: mu() names it in const methods' annotations
  CondVar cv_;
  Ring<InFrame> frames_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  SpareBuffers spares_ ABSL_GUARDED_BY(mu_);  // big buffers kept for reuse (see peer_internal.h)
  std::atomic<uint64_t> deliveries_{0};
  std::atomic<uint64_t> fast_path_frames_{0};
  uint64_t deliveries_at_release_ ABSL_GUARDED_BY(mu_) = 0;  // deliveries_ at the last ReleaseIdleMemory
  bool paused_ ABSL_GUARDED_BY(mu_) = false;                 // reading stopped: frames_ was full
  bool discard_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::string> type_names_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace constellation::net
