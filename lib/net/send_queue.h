#pragma once

// SendQueue: a Peer's outgoing frames (the send side's queue state) and the
// lock that guards them, send_mu_ in Peer's terms (see peer.h for the lock
// order and the write role). Owned by one Peer, shared by its senders and the
// loop thread: every method but AddWaiter/RemoveWaiter needs mu() held. The
// holder of Peer's write role writes from the slots with mu() dropped (Ring
// slots never move); only it calls Consume.

#include <sys/uio.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "lib/net/frame.h"
#include "lib/net/mutex.h"
#include "lib/net/peer_internal.h"
#include "lib/net/ring.h"
#include "lib/net/spare_buffers.h"
#include "lib/net/waiter.h"

namespace constellation::net {

class SendQueue {
 public:
  // At most max_frames data frames (each may need an Open frame before it) and
  // max_bytes payload bytes; kControlReserve slots stay free for control frames.
  SendQueue(size_t max_frames, size_t max_bytes);
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  Mutex& mu() const ABSL_LOCK_RETURNED(mu_) { return mu_; }
  CondVar& cv() { return cv_; }  // room, failure, the write role coming free

  // Queues a frame, swapping *payload for the slot's old, cleared buffer (or a spare).
  void Push(const FrameHeader& header, std::string* payload, bool held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    OutFrame& frame = frames_.push_back();
    EncodeFrameHeader(header, frame.header);
    frame.payload.swap(*payload);  // *payload gets the slot's old, cleared buffer
    spares_.Take(payload);
    frame.held = held;
    bytes_ += frame.payload.size();
    ++pushes_;
  }
  // Peer::SendParts: queues the head frame of a payload written from the
  // caller's memory, with no payload yet (its length counts toward the
  // bound); returns its encoded header, in a slot that never moves. The
  // queue must be empty and the caller hold the write role.
  const char* PushInPlace(const FrameHeader& header) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    OutFrame& frame = frames_.push_back();
    EncodeFrameHeader(header, frame.header);
    frame.held = false;
    in_place_bytes_ = header.length;
    bytes_ += header.length;
    ++pushes_;
    return frame.header;
  }
  // `written` bytes of the head frame's header and payload (`bytes`) went
  // out: pops it when all did (true). Else the frame is written on from
  // there like any queued frame: from the caller's memory with `lend` (a
  // *lent* frame: the caller must not return before lent() is false, see
  // TakeBackLent), or from a copy of the payload.
  bool FinishInPlace(size_t written, std::string_view bytes, bool lend) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A lent frame is queued: its payload is still read from the caller's
  // memory. It stops being lent when written whole, dropped by Fail, or
  // taken back.
  bool lent() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return lent_; }
  // Copies the lent frame's payload into the queue, so that the caller's
  // memory is its own again. Nobody may hold the write role (a writer reads
  // the lent memory with mu_ dropped).
  void TakeBackLent() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Room for a data frame and its Open frame.
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return frames_.size() + 2 + peer_internal::kControlReserve <= frames_.max_capacity() && bytes_ < max_bytes_;
  }
  // Fills iov (at most max entries) with the unwritten bytes of the queued
  // frames, up to the first held one; returns how many entries. With several
  // frames queued, headers and small payloads are copied into one staging
  // buffer, so a run of small frames is one entry (a writev carries up to
  // kStageSize of them, not kMaxIov / 2); big payloads stay entries of their own.
  // Called by the write role's holder, who writes from the staging buffer
  // with mu_ dropped (nobody else touches it).
  int Gather(iovec* iov, int max) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int n = 0;
    size_t staged = 0;
    const bool coalesce = frames_.size() > 1;
    if (coalesce && stage_ == nullptr) stage_.reset(new char[kStageSize]);  // uninitialised: only written
    char* const stage = stage_.get();
    // Appends [p, p + len) to iov; false when there is no room (stop there).
    auto add = [&](const char* p, size_t len) {
      if (coalesce && len < kCopyBelow && staged + len <= kStageSize) {
        char* to = stage + staged;
        std::memcpy(to, p, len);
        if (n > 0 && static_cast<char*>(iov[n - 1].iov_base) + iov[n - 1].iov_len == to) {
          iov[n - 1].iov_len += len;  // the run of staged bytes goes on
        } else if (n < max) {
          iov[n++] = {to, len};
        } else {
          return false;
        }
        staged += len;
        return true;
      }
      if (n == max) return false;
      iov[n++] = {const_cast<char*>(p), len};
      return true;
    };
    size_t offset = offset_;
    for (size_t i = 0; i < frames_.size(); ++i) {
      OutFrame& frame = frames_.at(i);
      if (frame.held) break;
      if (offset < kFrameHeaderSize && !add(frame.header + offset, kFrameHeaderSize - offset)) break;
      size_t payload_offset = offset > kFrameHeaderSize ? offset - kFrameHeaderSize : 0;
      const std::string_view payload = Payload(frame);
      if (payload_offset < payload.size() && !add(payload.data() + payload_offset, payload.size() - payload_offset)) {
        break;
      }
      offset = 0;
    }
    return n;
  }
  // `written` bytes of what Gather returned went out: pops the frames done.
  void Consume(size_t written) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    written_on_connection_ += written;
    while (written > 0) {
      OutFrame& frame = frames_.front();
      const size_t size = Payload(frame).size();
      size_t rest = kFrameHeaderSize + size - offset_;
      if (written < rest) {
        offset_ += written;
        return;
      }
      written -= rest;
      bytes_ -= size;
      PopFront();
      offset_ = 0;
    }
  }
  // Wakes senders and select waiters.
  void Notify() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    cv_.NotifyAll();
    for (Waiter* w : waiters_) w->Fire();
  }
  void AddWaiter(Waiter* w) ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveWaiter(Waiter* w) ABSL_LOCKS_EXCLUDED(mu_);

  // Every queued frame may be written (the Close in flight was answered).
  void ReleaseHeld() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new connection: counts written bytes from zero.
  void StartConnection() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { written_on_connection_ = 0; }
  // The connection is gone: a partly written frame is lost with it; see Fail.
  void DropPartial() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { offset_ = 0; }
  // The peer is gone: records `status` (the first sticks) and drops every
  // queued frame, counting its bytes as lost.
  void Fail(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives back the slots and the spares if quiet since the last call and
  // nothing is queued or being written (`writing`: a writer holds pointers
  // into queued slots only, and there are none).
  void ReleaseIdleMemory(bool writing) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool empty() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return frames_.empty(); }
  bool full() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return frames_.full(); }
  size_t bytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return bytes_; }
  const absl::Status& status() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return status_; }
  uint64_t lost_bytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return lost_bytes_; }
  uint64_t written_on_connection() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return written_on_connection_; }
  size_t slots() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return frames_.capacity(); }
  size_t spare_bytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return spares_.bytes() + (stage_ != nullptr ? kStageSize : 0);
  }

 private:
  // Gather's staging buffer, and the payloads it copies (smaller than kCopyBelow).
  static constexpr size_t kStageSize = 64 << 10;
  static constexpr size_t kCopyBelow = 2048;

  struct OutFrame {
    char header[kFrameHeaderSize];
    std::string payload;
    std::string_view lent;  // the payload in the caller's memory, for a lent frame (data() not null)
    bool held = false;
  };
  static std::string_view Payload(const OutFrame& frame) {
    return frame.lent.data() != nullptr ? frame.lent : std::string_view(frame.payload);
  }
  // Pops the head frame, its buffer kept for reuse and its loan ended.
  void PopFront() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    OutFrame& frame = frames_.front();
    if (frame.lent.data() != nullptr) {
      frame.lent = {};
      lent_ = false;
    }
    peer_internal::ClearBuffer(&frame.payload, &spares_);
    frames_.pop_front();
  }

  const size_t max_bytes_;
  mutable Mutex mu_;  // mutable: mu() names it in const methods' annotations
  CondVar cv_;
  // The queue. Its slots never move (Ring): the holder of the write role
  // writes from them with mu_ dropped (see Peer::WriteLocked), and only it pops.
  Ring<OutFrame> frames_ ABSL_GUARDED_BY(mu_);
  size_t offset_ ABSL_GUARDED_BY(mu_) = 0;          // bytes of frames_.front() already written
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;           // payload bytes in frames_
  size_t in_place_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // the in-place head frame's payload (PushInPlace)
  bool lent_ ABSL_GUARDED_BY(mu_) = false;          // the head frame is lent (FinishInPlace)
  SpareBuffers spares_ ABSL_GUARDED_BY(mu_);        // big buffers kept for reuse (see peer_internal.h)
  // Gather's staging buffer: allocated by the first batch, freed when idle
  // (ReleaseIdleMemory); the write role's holder writes from it unlocked.
  std::unique_ptr<char[]> stage_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);             // the peer's error
  uint64_t pushes_ ABSL_GUARDED_BY(mu_) = 0;             // frames queued, ever
  uint64_t pushes_at_release_ ABSL_GUARDED_BY(mu_) = 0;  // pushes_ at the last ReleaseIdleMemory
  uint64_t lost_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t written_on_connection_ ABSL_GUARDED_BY(mu_) = 0;  // frame bytes since StartConnection
};

}  // namespace constellation::net
