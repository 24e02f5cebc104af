#include "lib/net/peer.h"

// Peer: construction, the send side, and the loop's connection management.
// The receive side (recv, the read role, frame parsing) is in peer_read.cc.

#include "lib/net/peer_internal.h"

namespace constellation::net {

using namespace peer_internal;

Peer::Peer(const Pid& pid, const PeerLimits& limits, Hooks hooks)
    : pid_(pid),
      hooks_(std::move(hooks)),
      send_(limits.max_frames, limits.max_bytes),
      recv_(limits.max_frames, limits.max_bytes) {}

// ---- Senders ----

absl::Status Peer::AwaitRoomLocked(absl::Time deadline) {
  while (!SendReadyLocked() && send_.cv().WaitUntil(&send_.mu(), deadline)) {
  }
  const bool ready = SendReadyLocked();
  if (!send_.status().ok()) {
    told_.store(true, std::memory_order_relaxed);
    return send_.status();
  }
  if (has_report_.load(std::memory_order_relaxed)) {
    if (absl::Status report = TakeReport(); !report.ok()) return report;
  }
  if (!ready) {
    return absl::DeadlineExceededError(
        absl::StrCat("send to ", pid_.to_string(), ": the buffer bound is reached (the receiver is not reading)"));
  }
  return absl::OkStatus();
}

absl::Status Peer::Send(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string* payload,
                        absl::Time deadline) {
  UniqueLock lock(&send_.mu());
  if (absl::Status room = AwaitRoomLocked(deadline); !room.ok()) return room;
  const After after = QueueLocked(fingerprint, type_name, opened, payload);
  lock.Unlock();
  CallHook(after);
  return absl::OkStatus();
}

Peer::After Peer::QueueLocked(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string* payload) {
  if (!*opened) {
    std::string name(type_name);
    send_.Push(FrameHeader{FrameKind::kOpen, kChannelForward, fingerprint, name.size()}, &name, holding_);
    *opened = true;
  }
  send_.Push(FrameHeader{FrameKind::kData, kChannelForward, fingerprint, payload->size()}, payload, holding_);
  // A flush is posted: the loop writes this frame with the others (no clock read).
  if (fd_ < 0 || writing_ || write_armed_ || holding_ || flush_posted_) {
    bursts_.Joined();
    return After::kNothing;
  }
  // Written by the loop with the sends that follow, or at once (send_bursts.h).
  if (bursts_.Decide(MonotonicNs(), recv_.deliveries()) == SendBursts::Write::kByTheLoop) {
    flush_posted_ = true;
    return After::kWantFlush;
  }
  writing_ = true;
  // kError: the loop sees the broken socket on its read side and fails the peer.
  if (WriteLocked() != WriteResult::kBlocked) return After::kNothing;
  write_armed_ = true;
  return After::kWantWrite;
}

void Peer::CallHook(After after) {
  if (after == After::kWantFlush) hooks_.want_flush(pid_);
  if (after == After::kWantWrite) hooks_.want_write(pid_);
}

absl::Status Peer::SendParts(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string_view bytes,
                             std::string* scratch, absl::Time deadline) {
  UniqueLock lock(&send_.mu());
  if (absl::Status room = AwaitRoomLocked(deadline); !room.ok()) return room;
  const size_t size = bytes.size();
  if (!*opened || size < kInPlaceMin || fd_ < 0 || writing_ || write_armed_ || holding_ || flush_posted_ ||
      !send_.empty()) {
    // Small, or the connection is busy: the payload joins the queue (a copy),
    // to go out in order behind what is there.
    scratch->assign(bytes);
    const After after = QueueLocked(fingerprint, type_name, opened, scratch);
    lock.Unlock();
    CallHook(after);
    return absl::OkStatus();
  }
  // Nothing queued and nobody writing: header and payload go out from where
  // they are, in one sendmsg. The frame holds its place at the head of the
  // queue meanwhile (senders on other threads queue behind it). What the
  // socket did not take is written by the loop from the caller's memory while
  // this send may wait (a lent frame, see AwaitLentLocked), else from a copy.
  const bool lend = deadline == absl::InfiniteFuture() || deadline > absl::Now();
  writing_ = true;
  const char* header = send_.PushInPlace(FrameHeader{FrameKind::kData, kChannelForward, fingerprint, size});
  iovec iov[2] = {{const_cast<char*>(header), kFrameHeaderSize}, {const_cast<char*>(bytes.data()), bytes.size()}};
  const int fd = fd_;
  send_.mu().Unlock();  // the write role keeps the head slot ours (see WriteLocked)
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t written;
  do {
    written = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (written < 0 && errno == EINTR);
  const int error = errno;
  send_.mu().Lock();
  const bool all = send_.FinishInPlace(written > 0 ? static_cast<size_t>(written) : 0, bytes, lend);
  bursts_.Start(MonotonicNs(), recv_.deliveries());
  const bool blocked = written >= 0 ? !all : (error == EAGAIN || error == EWOULDBLOCK);
  // All written: frames queued meanwhile go now. A broken socket: the loop
  // sees it on its read side and fails the peer (or redials).
  if (blocked || WriteLocked() == WriteResult::kBlocked) {
    // The socket is full: the loop writes the rest when it drains.
    writing_ = false;
    write_armed_ = true;
    send_.Notify();
    lock.Unlock();
    hooks_.want_write(pid_);
    lock.Lock();
  }
  AwaitLentLocked(deadline);
  return absl::OkStatus();
}

void Peer::AwaitLentLocked(absl::Time deadline) {
  // Wait while the connection makes progress: a receiver that reads (its
  // data plane reads whatever its program does, up to its queue's bound)
  // takes the value soon, and its memory was never copied. One that does not
  // leaves the value to be copied and buffered, as if it had been so at once.
  if (!send_.lent()) return;  // written whole (the common case): no clock read
  uint64_t written = send_.written_on_connection();
  absl::Time patience = absl::Now() + kLendPatience;
  while (send_.lent() && send_.status().ok()) {
    const bool woken = send_.cv().WaitUntil(&send_.mu(), std::min(deadline, patience));
    if (send_.written_on_connection() != written) {
      written = send_.written_on_connection();
      patience = absl::Now() + kLendPatience;
    } else if (!woken && absl::Now() >= std::min(deadline, patience)) {
      break;
    }
  }
  if (send_.lent()) {
    while (writing_) send_.cv().Wait(&send_.mu());  // the loop writes from the value: a non-blocking sendmsg
    send_.TakeBackLent();
  }
}

Peer::WriteResult Peer::WriteLocked() {
  WriteResult result = WriteResult::kDone;
  while (true) {
    if (fd_ < 0) {
      result = WriteResult::kIdle;
      break;
    }
    iovec iov[kMaxIov];
    int n = send_.Gather(iov, kMaxIov);
    if (n == 0) break;
    int fd = fd_;
    // Unlocked while writing. Safe: the write role makes this thread the only one
    // that pops send_ or writes fd; other threads only fill slots past those in
    // iov (Ring slots never move), and Detach/Fail wait for the role first.
    send_.mu().Unlock();
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t written = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    int error = errno;
    send_.mu().Lock();
    if (written < 0) {
      if (error == EINTR) continue;
      result = (error == EAGAIN || error == EWOULDBLOCK) ? WriteResult::kBlocked : WriteResult::kError;
      break;
    }
    send_.Consume(static_cast<size_t>(written));
  }
  writing_ = false;
  send_.Notify();
  return result;
}

bool Peer::SendReadyLocked() const {
  return !send_.status().ok() || send_.HasRoom() || has_report_.load(std::memory_order_relaxed);
}

bool Peer::SendReady() {
  MutexLock lock(&send_.mu());
  return SendReadyLocked();
}

void Peer::AddSendWaiter(Waiter* w) { send_.AddWaiter(w); }

void Peer::RemoveSendWaiter(Waiter* w) { send_.RemoveWaiter(w); }

// ---- Loop thread ----

Peer::WriteResult Peer::Attach(int fd) {
  UniqueLock lock(&send_.mu());
  while (writing_) send_.cv().Wait(&send_.mu());
  fd_ = fd;
  send_.StartConnection();
  holding_ = false;
  write_armed_ = false;
  flush_posted_ = false;  // a flush posted for the last connection may have found no link
  send_.ReleaseHeld();
  writing_ = true;
  return WriteLocked();
}

void Peer::Detach() {
  {
    UniqueLock lock(&send_.mu());
    while (writing_) send_.cv().Wait(&send_.mu());  // a non-blocking sendmsg: short
    fd_ = -1;
    write_armed_ = false;
    flush_posted_ = false;
    send_.DropPartial();  // a partly written frame is lost with its connection; see Fail
  }
  UniqueLock lock(&recv_.mu());
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
    lock.Unlock();
    shutdown(fd, SHUT_RD);
    lock.Lock();
    while (reader_ == Reader::kUser) recv_.cv().Wait(&recv_.mu());
    detach_waiting_ = false;
  }
}

Peer::WriteResult Peer::Flush() {
  UniqueLock lock(&send_.mu());
  write_armed_ = false;
  flush_posted_ = false;
  if (writing_) return WriteResult::kDone;  // that writer asks for POLLOUT if it blocks
  writing_ = true;
  WriteResult result = WriteLocked();
  if (result == WriteResult::kBlocked) write_armed_ = true;
  return result;
}

bool Peer::QueueIfIdle(FrameKind kind) {
  MutexLock lock(&send_.mu());
  if (!send_.empty() || writing_ || holding_ || !send_.status().ok()) return false;
  {
    MutexLock recv_lock(&recv_.mu());
    if (!recv_.empty()) return false;
  }
  std::string empty;
  send_.Push(FrameHeader{kind, kChannelForward, 0, 0}, &empty, holding_);
  holding_ = true;
  return true;
}

void Peer::QueueControl(FrameKind kind) {
  MutexLock lock(&send_.mu());
  if (send_.full()) return;  // cannot happen: kControlReserve slots stay free for us
  std::string empty;
  send_.Push(FrameHeader{kind, kChannelForward, 0, 0}, &empty, holding_);
}

void Peer::EndHold() {
  MutexLock lock(&send_.mu());
  holding_ = false;
  send_.ReleaseHeld();
}

bool Peer::HasOutgoing() {
  MutexLock lock(&send_.mu());
  return send_.status().ok() && (!send_.empty() || writing_);
}

bool Peer::EndWritingIfIdle() {
  MutexLock lock(&send_.mu());
  if (!send_.empty() || writing_ || fd_ < 0) return false;
  shutdown(fd_, SHUT_WR);
  return true;
}

bool Peer::InboundEmpty() {
  MutexLock lock(&recv_.mu());
  return recv_.empty();
}

void Peer::SetTypeName(uint64_t fingerprint, std::string name) { recv_.SetTypeName(fingerprint, std::move(name)); }

void Peer::DiscardInbound() {
  MutexLock lock(&recv_.mu());
  recv_.Discard();
}

void Peer::Fail(absl::Status status) {
  {
    UniqueLock lock(&send_.mu());
    while (writing_) send_.cv().Wait(&send_.mu());
    send_.Fail(status);
    fd_ = -1;
    send_.Notify();
  }
  MutexLock lock(&recv_.mu());
  recv_.Fail(status);
  recv_.cv().NotifyAll();
  recv_.FireWaiters();
}

void Peer::ReportOnce(absl::Status status) {
  {
    MutexLock lock(&report_mu_);
    report_ = std::move(status);
    has_report_.store(true, std::memory_order_release);
  }
  {
    MutexLock lock(&send_.mu());
    send_.Notify();
  }
  MutexLock lock(&recv_.mu());
  recv_.cv().NotifyAll();
  recv_.FireWaiters();
}

absl::Status Peer::TakeReport() {
  MutexLock lock(&report_mu_);
  has_report_.store(false, std::memory_order_relaxed);
  return std::exchange(report_, absl::OkStatus());
}

size_t Peer::QueuedBytes() {
  MutexLock lock(&send_.mu());
  return send_.bytes();
}

uint64_t Peer::LostBytes() {
  MutexLock lock(&send_.mu());
  return told_.load(std::memory_order_relaxed) ? 0 : send_.lost_bytes();
}

uint64_t Peer::WrittenOnConnection() {
  MutexLock lock(&send_.mu());
  return send_.written_on_connection();
}

absl::Status Peer::status() {
  MutexLock lock(&send_.mu());
  return send_.status();
}

void Peer::ReleaseIdleMemory() {
  {
    MutexLock lock(&send_.mu());
    send_.ReleaseIdleMemory(writing_);
  }
  MutexLock lock(&recv_.mu());
  // Nobody holds the read role, and nobody can claim it while we hold
  // recv_mu_: the reader is ours for this call.
  if (recv_.ReleaseIdleMemory() && reader_ == Reader::kNone) read_.ReleaseIfIdle();
}

Peer::Memory Peer::HeldMemory() {
  Memory m;
  {
    MutexLock lock(&send_.mu());
    m.send_slots = send_.slots();
    m.spare_bytes += send_.spare_bytes();
  }
  MutexLock lock(&recv_.mu());
  m.recv_slots = recv_.slots();
  m.spare_bytes += recv_.spare_bytes();
  if (reader_ == Reader::kNone) m.reader_bytes = read_.HeldBytes();
  return m;
}

bool Peer::failed() {
  MutexLock lock(&send_.mu());
  return !send_.status().ok();
}

}  // namespace constellation::net
