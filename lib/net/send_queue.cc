#include "lib/net/send_queue.h"

#include <algorithm>

namespace constellation::net {

using namespace peer_internal;

SendQueue::SendQueue(size_t max_frames, size_t max_bytes)
    : max_bytes_(max_bytes), frames_(kInitialSlots, max_frames + 2 + kControlReserve), spares_(max_bytes + kOneValue) {}

void SendQueue::AddWaiter(Waiter* w) {
  MutexLock lock(&mu_);
  waiters_.push_back(w);
}

void SendQueue::RemoveWaiter(Waiter* w) {
  MutexLock lock(&mu_);
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), w));
}

bool SendQueue::FinishInPlace(size_t written, std::string_view bytes, bool lend) {
  written_on_connection_ += written;
  bytes_ -= in_place_bytes_;
  in_place_bytes_ = 0;
  OutFrame& frame = frames_.front();
  if (written == kFrameHeaderSize + bytes.size()) {
    frames_.pop_front();  // the slot's own (small) buffer stays with it
    return true;
  }
  // The whole payload becomes the frame's, with its first `written` bytes
  // marked written (Gather and Consume go on from offset_). Not only the
  // rest: if the connection breaks before the frame is done, DropPartial
  // sends it again whole on the next one.
  offset_ = written;
  bytes_ += bytes.size();
  if (lend) {
    frame.lent = bytes;
    lent_ = true;
    return false;
  }
  spares_.Take(&frame.payload);
  frame.payload.assign(bytes);
  return false;
}

void SendQueue::TakeBackLent() {
  if (!lent_) return;
  OutFrame& frame = frames_.front();  // a lent frame is the head one: it was written first
  spares_.Take(&frame.payload);
  frame.payload.assign(frame.lent);
  frame.lent = {};
  lent_ = false;
}

void SendQueue::ReleaseHeld() {
  for (size_t i = 0; i < frames_.size(); ++i) frames_.at(i).held = false;
}

void SendQueue::Fail(const absl::Status& status) {
  if (status_.ok()) status_ = status;
  lost_bytes_ += bytes_;
  while (!frames_.empty()) PopFront();
  bytes_ = 0;
  offset_ = 0;
}

void SendQueue::ReleaseIdleMemory(bool writing) {
  // Quiet since the last call, and nothing queued or being written (a
  // writer holds pointers into queued slots only, and there are none).
  if (pushes_ == pushes_at_release_ && frames_.empty() && !writing) {
    frames_.ShrinkIfEmpty();
    spares_.Release();
    stage_.reset();
  }
  pushes_at_release_ = pushes_;
}

}  // namespace constellation::net
