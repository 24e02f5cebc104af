#include "lib/net/peer.h"

// Peer: construction, the send side, and the loop's connection management.
// The receive side (recv, the read role, frame parsing) is in peer_read.cc.

#include "lib/net/peer_internal.h"

namespace constellation::net {

using namespace peer_internal;

Peer::Peer(const Pid& pid, const PeerLimits& limits, Hooks hooks)
    : pid_(pid),
      limits_(limits),
      hooks_(std::move(hooks)),
      out_(limits.max_frames + 2 + kControlReserve),
      in_(limits.max_frames) {}

// ---- Senders ----

bool Peer::SendRoomLocked() const {
  return out_.size() + 2 + kControlReserve <= out_.capacity() && out_bytes_ < limits_.max_bytes;
}

void Peer::NotifySendLocked() {
  send_cv_.notify_all();
  for (Waiter* w : send_waiters_) w->Fire();
}

void Peer::PushLocked(const FrameHeader& header, std::string* payload) {
  OutFrame& frame = out_.push_back();
  EncodeFrameHeader(header, frame.header);
  frame.payload.swap(*payload);  // *payload gets the slot's old, cleared buffer
  TakeSpare(payload, &spare_out_);
  frame.held = holding_;
  out_bytes_ += frame.payload.size();
}

absl::Status Peer::Send(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string* payload,
                        absl::Time deadline) {
  std::unique_lock<std::mutex> lock(send_mu_);
  bool ready = WaitUntil(send_cv_, lock, deadline, [&] {
    return !send_status_.ok() || SendRoomLocked() || has_report_.load(std::memory_order_relaxed);
  });
  if (!send_status_.ok()) {
    told_.store(true, std::memory_order_relaxed);
    return send_status_;
  }
  if (has_report_.load(std::memory_order_relaxed)) {
    if (absl::Status report = TakeReport(); !report.ok()) return report;
  }
  if (!ready) {
    return absl::DeadlineExceededError(
        absl::StrCat("send to ", pid_.to_string(), ": the buffer bound is reached (the receiver is not reading)"));
  }
  if (!*opened) {
    std::string name(type_name);
    PushLocked(FrameHeader{FrameKind::kOpen, kChannelForward, fingerprint, name.size()}, &name);
    *opened = true;
  }
  PushLocked(FrameHeader{FrameKind::kData, kChannelForward, fingerprint, payload->size()}, payload);
  if (fd_ >= 0 && !writing_ && !write_armed_ && !holding_) {
    // A one-way stream (sends in quick succession, nothing received in
    // between): leave the frames to pile up and let the loop write them in one
    // writev, instead of one syscall per message. A ping-pong, or a send after
    // a pause, writes from this thread at once: no wake-up of the loop.
    int64_t now = absl::GetCurrentTimeNanos();
    uint64_t deliveries = deliveries_.load(std::memory_order_relaxed);
    if (now - last_direct_write_ns_ < kBatchWindowNs && deliveries == deliveries_at_write_) {
      if (!flush_posted_) {
        flush_posted_ = true;
        lock.unlock();
        hooks_.want_flush(pid_);
      }
      return absl::OkStatus();
    }
    last_direct_write_ns_ = now;
    deliveries_at_write_ = deliveries;
    writing_ = true;
    if (WriteLocked(lock) == WriteResult::kBlocked) {
      write_armed_ = true;
      lock.unlock();
      hooks_.want_write(pid_);
    }
    // kError: the loop sees the broken socket on its read side and fails the peer.
  }
  return absl::OkStatus();
}

void Peer::ConsumeLocked(size_t written) {
  written_on_connection_ += written;
  while (written > 0) {
    OutFrame& frame = out_.front();
    size_t rest = kFrameHeaderSize + frame.payload.size() - out_offset_;
    if (written < rest) {
      out_offset_ += written;
      return;
    }
    written -= rest;
    out_bytes_ -= frame.payload.size();
    ClearBuffer(&frame.payload, &spare_out_);
    out_.pop_front();
    out_offset_ = 0;
  }
}

Peer::WriteResult Peer::WriteLocked(std::unique_lock<std::mutex>& lock) {
  WriteResult result = WriteResult::kDone;
  while (true) {
    if (fd_ < 0) {
      result = WriteResult::kIdle;
      break;
    }
    iovec iov[kMaxIov];
    int n = 0;
    size_t offset = out_offset_;
    for (size_t i = 0; i < out_.size() && n + 2 <= kMaxIov; ++i) {
      OutFrame& frame = out_.at(i);
      if (frame.held) break;
      if (offset < kFrameHeaderSize) iov[n++] = {frame.header + offset, kFrameHeaderSize - offset};
      size_t payload_offset = offset > kFrameHeaderSize ? offset - kFrameHeaderSize : 0;
      if (payload_offset < frame.payload.size()) {
        iov[n++] = {frame.payload.data() + payload_offset, frame.payload.size() - payload_offset};
      }
      offset = 0;
    }
    if (n == 0) break;
    int fd = fd_;
    // Unlocked while writing. Safe: the write role makes this thread the only one
    // that pops out_ or writes fd; other threads only fill slots past those in
    // iov (Ring slots never move), and Detach/Fail wait for the role first.
    lock.unlock();
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t written = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    int error = errno;
    lock.lock();
    if (written < 0) {
      if (error == EINTR) continue;
      result = (error == EAGAIN || error == EWOULDBLOCK) ? WriteResult::kBlocked : WriteResult::kError;
      break;
    }
    ConsumeLocked(static_cast<size_t>(written));
  }
  writing_ = false;
  NotifySendLocked();
  return result;
}

bool Peer::SendReady() {
  std::lock_guard<std::mutex> lock(send_mu_);
  return !send_status_.ok() || SendRoomLocked() || has_report_.load(std::memory_order_relaxed);
}

void Peer::AddSendWaiter(Waiter* w) {
  std::lock_guard<std::mutex> lock(send_mu_);
  send_waiters_.push_back(w);
}

void Peer::RemoveSendWaiter(Waiter* w) {
  std::lock_guard<std::mutex> lock(send_mu_);
  send_waiters_.erase(std::find(send_waiters_.begin(), send_waiters_.end(), w));
}

// ---- Loop thread ----

Peer::WriteResult Peer::Attach(int fd) {
  std::unique_lock<std::mutex> lock(send_mu_);
  send_cv_.wait(lock, [&] { return !writing_; });
  fd_ = fd;
  written_on_connection_ = 0;
  holding_ = false;
  write_armed_ = false;
  for (size_t i = 0; i < out_.size(); ++i) out_.at(i).held = false;
  writing_ = true;
  return WriteLocked(lock);
}

void Peer::Detach() {
  {
    std::unique_lock<std::mutex> lock(send_mu_);
    send_cv_.wait(lock, [&] { return !writing_; });  // a non-blocking sendmsg: short
    fd_ = -1;
    write_armed_ = false;
    out_offset_ = 0;  // a partly written frame is lost with its connection; see Fail
  }
  std::unique_lock<std::mutex> lock(recv_mu_);
  const int fd = read_fd_;
  read_fd_ = -1;
  read_ep_ = -1;
  read_conn_ = 0;
  loop_parked_ = false;
  user_mode_ = false;
  lease_active_ = false;
  if (reader_ == Reader::kUser) {
    // A user thread is reading (perhaps blocked in poll): end its reads with
    // EOF and wait until it lets go of the socket, which closes after this.
    detach_waiting_ = true;
    lock.unlock();
    shutdown(fd, SHUT_RD);
    lock.lock();
    recv_cv_.wait(lock, [&] { return reader_ != Reader::kUser; });
    detach_waiting_ = false;
  }
}

Peer::WriteResult Peer::Flush() {
  std::unique_lock<std::mutex> lock(send_mu_);
  write_armed_ = false;
  flush_posted_ = false;
  if (writing_) return WriteResult::kDone;  // that writer asks for POLLOUT if it blocks
  writing_ = true;
  WriteResult result = WriteLocked(lock);
  if (result == WriteResult::kBlocked) write_armed_ = true;
  return result;
}

bool Peer::QueueIfIdle(FrameKind kind) {
  std::lock_guard<std::mutex> lock(send_mu_);
  if (!out_.empty() || writing_ || holding_ || !send_status_.ok()) return false;
  {
    std::lock_guard<std::mutex> recv_lock(recv_mu_);
    if (!in_.empty()) return false;
  }
  std::string empty;
  PushLocked(FrameHeader{kind, kChannelForward, 0, 0}, &empty);
  holding_ = true;
  return true;
}

void Peer::QueueControl(FrameKind kind) {
  std::lock_guard<std::mutex> lock(send_mu_);
  if (out_.full()) return;  // cannot happen: kControlReserve slots stay free for us
  std::string empty;
  PushLocked(FrameHeader{kind, kChannelForward, 0, 0}, &empty);
}

void Peer::EndHold() {
  std::lock_guard<std::mutex> lock(send_mu_);
  holding_ = false;
  for (size_t i = 0; i < out_.size(); ++i) out_.at(i).held = false;
}

bool Peer::HasOutgoing() {
  std::lock_guard<std::mutex> lock(send_mu_);
  return send_status_.ok() && (!out_.empty() || writing_);
}

bool Peer::InboundEmpty() {
  std::lock_guard<std::mutex> lock(recv_mu_);
  return in_.empty();
}

void Peer::SetTypeName(uint64_t fingerprint, std::string name) {
  std::lock_guard<std::mutex> lock(recv_mu_);
  type_names_[fingerprint] = std::move(name);
}

void Peer::DiscardInbound() {
  std::lock_guard<std::mutex> lock(recv_mu_);
  discard_ = true;
}

void Peer::Fail(absl::Status status) {
  {
    std::unique_lock<std::mutex> lock(send_mu_);
    send_cv_.wait(lock, [&] { return !writing_; });
    if (send_status_.ok()) send_status_ = status;
    lost_bytes_ += out_bytes_;
    while (!out_.empty()) {
      ClearBuffer(&out_.front().payload, &spare_out_);
      out_.pop_front();
    }
    out_bytes_ = 0;
    out_offset_ = 0;
    fd_ = -1;
    NotifySendLocked();
  }
  std::lock_guard<std::mutex> lock(recv_mu_);
  if (recv_status_.ok()) recv_status_ = status;
  recv_cv_.notify_all();
  for (Waiter* w : recv_waiters_) w->Fire();
}

void Peer::ReportOnce(absl::Status status) {
  {
    std::lock_guard<std::mutex> lock(report_mu_);
    report_ = std::move(status);
    has_report_.store(true, std::memory_order_release);
  }
  {
    std::lock_guard<std::mutex> lock(send_mu_);
    NotifySendLocked();
  }
  std::lock_guard<std::mutex> lock(recv_mu_);
  recv_cv_.notify_all();
  for (Waiter* w : recv_waiters_) w->Fire();
}

absl::Status Peer::TakeReport() {
  std::lock_guard<std::mutex> lock(report_mu_);
  has_report_.store(false, std::memory_order_relaxed);
  return std::exchange(report_, absl::OkStatus());
}

size_t Peer::QueuedBytes() {
  std::lock_guard<std::mutex> lock(send_mu_);
  return out_bytes_;
}

uint64_t Peer::LostBytes() {
  std::lock_guard<std::mutex> lock(send_mu_);
  return told_.load(std::memory_order_relaxed) ? 0 : lost_bytes_;
}

uint64_t Peer::WrittenOnConnection() {
  std::lock_guard<std::mutex> lock(send_mu_);
  return written_on_connection_;
}

absl::Status Peer::status() {
  std::lock_guard<std::mutex> lock(send_mu_);
  return send_status_;
}

bool Peer::failed() {
  std::lock_guard<std::mutex> lock(send_mu_);
  return !send_status_.ok();
}

}  // namespace constellation::net
