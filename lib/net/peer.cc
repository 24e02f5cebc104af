#include "lib/net/peer.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace constellation::net {
namespace {

constexpr int kMaxIov = 128;
// Slots kept free for the loop's control frames.
constexpr size_t kControlReserve = 2;
// Buffers are recycled, not freed, so the steady state allocates nothing per
// message: a ring slot keeps a buffer up to kSlotKeep (1024 slots: 16 MiB at
// most per direction), and one spare per direction keeps the biggest buffer
// up to kKeepCapacity, so a stream of values up to the byte bound reuses it.
constexpr size_t kSlotKeep = 16 << 10;
// Sends closer together than this, with nothing received in between, are a
// stream: they are batched (see Send).
constexpr int64_t kBatchWindowNs = 50'000;
constexpr size_t kKeepCapacity = (4 << 20) + (64 << 10);

// Empties a buffer leaving a queue: it stays if small, becomes the spare if
// it is bigger than the spare, and is freed otherwise.
void ClearBuffer(std::string* buffer, std::string* spare) {
  buffer->clear();
  size_t capacity = buffer->capacity();
  if (capacity <= kSlotKeep) return;
  if (capacity <= kKeepCapacity && capacity > spare->capacity()) buffer->swap(*spare);
  std::string().swap(*buffer);
}

// Gives a buffer about to be filled the spare, if the spare is bigger.
void TakeSpare(std::string* buffer, std::string* spare) {
  if (spare->capacity() > buffer->capacity()) buffer->swap(*spare);
}

// User mode (see ReadAsUser) follows a recv that held the read role at most
// kStickyHoldNs; the loop's lease timer looks every kLeasePeriod whether
// recvs keep coming. A recv still holding the role a whole period later has
// held it longer than kStickyHoldNs, so it gives the socket back itself.
constexpr int64_t kStickyHoldNs = 500'000;
constexpr absl::Duration kLeasePeriod = absl::Milliseconds(1);

// The read side: bytes asked of the socket at once, and the payload bytes
// still missing above which a frame is read straight into its payload.
constexpr size_t kReadBufferSize = 64 << 10;
constexpr size_t kDirectRead = 16 << 10;

// Sets which events of `fd` (registered in the epoll set `ep`) are watched.
void SetInterest(int ep, int fd, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &event);  // cannot fail: fd stays registered while ep is open
}

// Waits until `fd` is readable (or has an error or EOF, which recv reports);
// false at `deadline`.
bool PollReadable(int fd, absl::Time deadline) {
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

// Why a connection that ended (recv returned 0) ended.
absl::Status EndOfStreamStatus(bool mid_frame) {
  if (mid_frame) return absl::DataLossError("connection closed in the middle of a frame");
  return absl::UnavailableError("connection closed");
}

}  // namespace

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
  bool ready = WaitUntil(send_cv_, lock, deadline, [&] { return !send_status_.ok() || SendRoomLocked(); });
  if (!send_status_.ok()) return send_status_;
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
  return !send_status_.ok() || SendRoomLocked();
}

void Peer::AddSendWaiter(Waiter* w) {
  std::lock_guard<std::mutex> lock(send_mu_);
  send_waiters_.push_back(w);
}

void Peer::RemoveSendWaiter(Waiter* w) {
  std::lock_guard<std::mutex> lock(send_mu_);
  send_waiters_.erase(std::find(send_waiters_.begin(), send_waiters_.end(), w));
}

// ---- Receivers ----

bool Peer::CanUserReadLocked() const {
  return read_fd_ >= 0 && reader_ == Reader::kNone && !read_paused_ && !read_broken_ && !discard_;
}

absl::Status Peer::Recv(absl::Time deadline, InFrame* out) {
  std::unique_lock<std::mutex> lock(recv_mu_);
  bool looked = false;
  while (in_.empty() && recv_status_.ok()) {
    if (deadline != absl::InfiniteFuture() && absl::Now() >= deadline) {
      // In user mode the loop does not watch the socket (see ReadAsUser):
      // look at it without waiting, once.
      if (looked || !user_mode_ || !CanUserReadLocked()) break;
      looked = true;
      if (ReadAsUser(lock, absl::InfinitePast(), out)) return absl::OkStatus();
      continue;
    }
    if (CanUserReadLocked()) {
      // The fast path: nothing queued and nobody reading, so this thread reads
      // the socket itself instead of waiting for the loop to wake it.
      if (ReadAsUser(lock, deadline, out)) return absl::OkStatus();
      continue;
    }
    ++recv_waiting_;
    bool ready =
        WaitUntil(recv_cv_, lock, deadline, [&] { return !in_.empty() || !recv_status_.ok() || CanUserReadLocked(); });
    --recv_waiting_;
    if (!ready) break;
  }
  if (in_.empty()) {
    if (!recv_status_.ok()) return recv_status_;
    return absl::DeadlineExceededError(absl::StrCat("recv from ", pid_.to_string(), ": nothing arrived in time"));
  }
  InFrame& frame = in_.front();
  out->fingerprint = frame.fingerprint;
  out->payload.swap(frame.payload);
  in_bytes_ -= out->payload.size();
  ClearBuffer(&frame.payload, &spare_in_);
  in_.pop_front();
  bool resume = false;
  if (read_paused_ && in_.size() <= in_.capacity() / 2 && in_bytes_ <= limits_.max_bytes / 2) {
    read_paused_ = false;
    resume = true;
  }
  lock.unlock();
  if (resume) hooks_.resume_read(pid_);
  return absl::OkStatus();
}

bool Peer::ReadAsUser(std::unique_lock<std::mutex>& lock, absl::Time deadline, InFrame* out) {
  reader_ = Reader::kUser;
  ++claims_;
  const int64_t claimed_ns = absl::GetCurrentTimeNanos();
  const int fd = read_fd_;
  const int ep = read_ep_;
  const uint64_t conn = read_conn_;
  bool loop_watches = !user_mode_;  // the socket is in the epoll set the loop watches
  lock.unlock();
  bool got = false;
  // recv before poll: a deadline already past, or the last recv filled what it asked for.
  bool may_read = deadline == absl::InfinitePast();
  absl::Status down;
  while (true) {
    FrameHeader control;
    absl::Status bad;
    Parse parsed = ParseBuffered(got ? nullptr : out, &control, &bad);
    if (parsed == Parse::kTook) {
      got = true;
      continue;  // queue what else is buffered: nothing stays parsed-but-unseen
    }
    if (parsed == Parse::kControl) {
      hooks_.control(pid_, conn, control);
      continue;
    }
    if (parsed == Parse::kPaused) break;
    if (parsed == Parse::kBad) {
      down = bad;
      break;
    }
    if (got) break;  // kNeedMore: what is left in the socket waits for the next recv (or the lease)
    if (!may_read) {
      if (loop_watches) {
        SetInterest(ep, fd, 0);
        loop_watches = false;
      }
      if (!PollReadable(fd, deadline)) break;
    }
    size_t asked = 0;
    ssize_t n = ReadSocket(fd, std::numeric_limits<size_t>::max(), &asked);
    if (n > 0) {
      may_read = static_cast<size_t>(n) == asked;
      continue;
    }
    if (n == 0) {
      down = EndOfStreamStatus(read_.in_frame || read_.pos < read_.end);
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (may_read && deadline == absl::InfinitePast()) break;
      may_read = false;
      continue;
    }
    down = absl::UnavailableError(absl::StrCat("read: ", std::strerror(errno)));
    break;
  }
  // After a short wait (a ping-pong, a stream) the socket stays out of the
  // loop's epoll set when the role is released ("user mode"): the next recv
  // reads it again without an epoll_ctl, and a reply that arrives before that
  // recv (say while this thread is still in sendmsg) wakes nobody. The loop's
  // lease timer takes the socket back once no recv came for a whole period
  // (LeaseTick), select takes it back at once (AddRecvWaiter), try_recv looks
  // itself. After a long wait, or at the connection's end, the loop watches
  // the socket again at once, from here (role held, no lock).
  if (!loop_watches && (!down.ok() || absl::GetCurrentTimeNanos() - claimed_ns > kStickyHoldNs)) {
    SetInterest(ep, fd, EPOLLIN);  // level-triggered: bytes already waiting wake the loop
    loop_watches = true;
  }
  lock.lock();
  reader_ = Reader::kNone;
  user_mode_ = !loop_watches;
  if (!down.ok()) read_broken_ = true;
  const bool lease = user_mode_ && !lease_active_;
  if (lease) lease_active_ = true;
  const bool resume = loop_parked_;
  loop_parked_ = false;
  if (detach_waiting_) recv_cv_.notify_all();
  if (resume || lease || !down.ok()) {
    lock.unlock();
    if (!down.ok()) hooks_.read_down(pid_, conn, std::move(down));
    if (lease) hooks_.lease(pid_, conn);
    if (resume) hooks_.resume_read(pid_);
    lock.lock();
  }
  return got;
}

void Peer::LeaveUserModeLocked(std::unique_lock<std::mutex>& lock, Reader as) {
  // Called with the role free (reader_ kNone) and user_mode_ set: claims the
  // role for the epoll_ctl, which only a role holder makes.
  reader_ = as;
  user_mode_ = false;
  const int fd = read_fd_;
  const int ep = read_ep_;
  lock.unlock();
  SetInterest(ep, fd, EPOLLIN);  // level-triggered: bytes already waiting wake the loop now
  lock.lock();
  reader_ = Reader::kNone;
  // Detach, or a receiver that found the role taken, waits for it.
  if (detach_waiting_ || recv_waiting_ > 0) recv_cv_.notify_all();
  if (loop_parked_) {  // the loop found the role taken meanwhile
    loop_parked_ = false;
    lock.unlock();
    hooks_.resume_read(pid_);
    lock.lock();
  }
}

absl::Duration Peer::LeaseStart() {
  std::lock_guard<std::mutex> lock(recv_mu_);
  lease_active_ = true;
  lease_seen_ = claims_;
  return kLeasePeriod;
}

absl::Duration Peer::LeaseTick() {
  std::unique_lock<std::mutex> lock(recv_mu_);
  if (!user_mode_ || read_fd_ < 0) {
    lease_active_ = false;
    return absl::ZeroDuration();
  }
  if (claims_ != lease_seen_) {  // recvs keep coming
    lease_seen_ = claims_;
    return kLeasePeriod;
  }
  lease_active_ = false;
  // A recv waiting for a whole period watches the socket itself, and gives it
  // back to the loop when it returns (a long wait, see ReadAsUser).
  if (reader_ != Reader::kNone) return absl::ZeroDuration();
  // No recv for a whole period: the loop watches the socket again.
  LeaveUserModeLocked(lock, Reader::kLoop);
  return absl::ZeroDuration();
}

std::string Peer::TypeName(uint64_t fingerprint) {
  std::lock_guard<std::mutex> lock(recv_mu_);
  auto it = type_names_.find(fingerprint);
  return it == type_names_.end() ? "<unknown type>" : it->second;
}

bool Peer::RecvReady() {
  std::lock_guard<std::mutex> lock(recv_mu_);
  return !in_.empty() || !recv_status_.ok();
}

bool Peer::UserReading() {
  std::lock_guard<std::mutex> lock(recv_mu_);
  return reader_ == Reader::kUser;
}

void Peer::AddRecvWaiter(Waiter* w) {
  std::unique_lock<std::mutex> lock(recv_mu_);
  recv_waiters_.push_back(w);
  // select waits for the loop to deliver: the loop must watch the socket.
  if (user_mode_ && reader_ == Reader::kNone && read_fd_ >= 0) LeaveUserModeLocked(lock, Reader::kUser);
}

void Peer::RemoveRecvWaiter(Waiter* w) {
  std::lock_guard<std::mutex> lock(recv_mu_);
  recv_waiters_.erase(std::find(recv_waiters_.begin(), recv_waiters_.end(), w));
}

// ---- Loop thread ----

Peer::WriteResult Peer::Attach(int fd) {
  std::unique_lock<std::mutex> lock(send_mu_);
  send_cv_.wait(lock, [&] { return !writing_; });
  fd_ = fd;
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

bool Peer::HasRoomLocked() const { return discard_ || (!in_.full() && in_bytes_ < limits_.max_bytes); }

void Peer::DeliverLocked(uint64_t fingerprint, std::string* payload) {
  if (discard_) {
    ClearBuffer(payload, &spare_in_);
    return;
  }
  InFrame& frame = in_.push_back();
  frame.fingerprint = fingerprint;
  frame.payload.swap(*payload);  // *payload gets the slot's old, cleared buffer
  TakeSpare(payload, &spare_in_);
  in_bytes_ += frame.payload.size();
  deliveries_.fetch_add(1, std::memory_order_relaxed);
  for (Waiter* w : recv_waiters_) w->Fire();  // under the lock: a waiter may go once it is removed
}

Peer::Parse Peer::ParseBuffered(InFrame* take, FrameHeader* control, absl::Status* bad) {
  ReadState& r = read_;
  while (true) {
    size_t available = r.end - r.pos;
    if (!r.in_frame) {
      if (available < kFrameHeaderSize) return Parse::kNeedMore;
      FrameHeader header;
      absl::Status status = DecodeFrameHeader(r.buffer.get() + r.pos, &header);
      if (!status.ok()) {
        *bad = absl::InvalidArgumentError(absl::StrCat("bad frame: ", status.message()));
        return Parse::kBad;
      }
      if (header.kind == FrameKind::kData && take == nullptr) {
        // (A frame for `take` needs no room: it never enters the queue.)
        std::lock_guard<std::mutex> lock(recv_mu_);
        if (!HasRoomLocked()) {
          read_paused_ = true;
          return Parse::kPaused;
        }
      }
      r.pos += kFrameHeaderSize;
      r.header = header;
      r.payload.resize(header.length);
      r.filled = 0;
      r.in_frame = true;
      available -= kFrameHeaderSize;
    }
    size_t take_bytes = std::min<size_t>(available, r.header.length - r.filled);
    if (take_bytes > 0) std::memcpy(r.payload.data() + r.filled, r.buffer.get() + r.pos, take_bytes);
    r.pos += take_bytes;
    r.filled += take_bytes;
    if (r.filled < r.header.length) return Parse::kNeedMore;
    r.in_frame = false;
    switch (r.header.kind) {
      case FrameKind::kData:
        if (take != nullptr) {
          {
            std::lock_guard<std::mutex> lock(recv_mu_);
            take->fingerprint = r.header.fingerprint;
            take->payload.swap(r.payload);  // the parser gets the caller's old buffer
            ClearBuffer(&r.payload, &spare_in_);
            TakeSpare(&r.payload, &spare_in_);
            deliveries_.fetch_add(1, std::memory_order_relaxed);
            fast_path_frames_.fetch_add(1, std::memory_order_relaxed);
            for (Waiter* w : recv_waiters_) w->Fire();
          }
          return Parse::kTook;
        }
        {
          std::lock_guard<std::mutex> lock(recv_mu_);
          DeliverLocked(r.header.fingerprint, &r.payload);
        }
        // After unlocking, so the woken receiver does not block again on recv_mu_.
        recv_cv_.notify_all();
        continue;
      case FrameKind::kOpen:
        // Handled here, not by the loop: a receiver may need the name at once.
        SetTypeName(r.header.fingerprint, std::string(r.payload));
        r.payload.clear();
        continue;
      default:
        *control = r.header;
        r.payload.clear();
        return Parse::kControl;
    }
  }
}

ssize_t Peer::ReadSocket(int fd, size_t max, size_t* asked) {
  ReadState& r = read_;
  ssize_t n;
  if (r.in_frame && r.pos == r.end && r.header.length - r.filled >= kDirectRead) {
    *asked = std::min<size_t>(r.header.length - r.filled, max);
    n = recv(fd, r.payload.data() + r.filled, *asked, MSG_DONTWAIT);
    if (n > 0) r.filled += n;
  } else {
    if (r.pos > 0) {
      std::memmove(r.buffer.get(), r.buffer.get() + r.pos, r.end - r.pos);
      r.end -= r.pos;
      r.pos = 0;
    }
    *asked = std::min<size_t>(kReadBufferSize - r.end, max);
    n = recv(fd, r.buffer.get() + r.end, *asked, MSG_DONTWAIT);
    if (n > 0) r.end += n;
  }
  return n;
}

void Peer::AttachRead(int fd, int ep, uint64_t conn) {
  {
    std::lock_guard<std::mutex> lock(recv_mu_);
    // reader_ is kNone: Detach took the role back from the last connection.
    read_fd_ = fd;
    read_ep_ = ep;
    read_conn_ = conn;
    read_broken_ = false;
    loop_parked_ = false;
    user_mode_ = false;
    lease_active_ = false;
    if (read_.buffer == nullptr) read_.buffer.reset(new char[kReadBufferSize]);
    read_.pos = 0;
    read_.end = 0;
    read_.in_frame = false;
    read_.filled = 0;
    read_.payload.clear();
  }
  recv_cv_.notify_all();  // a receiver waiting for a connection may read it now
}

Peer::ReadOutcome Peer::LoopRead(size_t* budget, FrameHeader* control, absl::Status* down) {
  int fd;
  int ep;
  bool rearm;
  uint64_t deliveries;
  {
    std::lock_guard<std::mutex> lock(recv_mu_);
    if (read_fd_ < 0 || read_broken_) return ReadOutcome::kBroken;
    if (reader_ == Reader::kUser) {
      loop_parked_ = true;
      return ReadOutcome::kBusy;
    }
    if (read_paused_) {
      if (!discard_) return ReadOutcome::kPaused;
      read_paused_ = false;
    }
    reader_ = Reader::kLoop;
    fd = read_fd_;
    ep = read_ep_;
    rearm = user_mode_;
    user_mode_ = false;
    deliveries = deliveries_.load(std::memory_order_relaxed);
  }
  if (rearm) SetInterest(ep, fd, EPOLLIN);  // the loop reads this socket from now on
  ReadOutcome outcome;
  bool drained = false;
  while (true) {
    absl::Status bad;
    Parse parsed = ParseBuffered(nullptr, control, &bad);
    if (parsed == Parse::kControl) {
      outcome = ReadOutcome::kControl;
      break;
    }
    if (parsed == Parse::kPaused) {
      outcome = ReadOutcome::kPaused;
      break;
    }
    if (parsed == Parse::kBad) {
      *down = std::move(bad);
      outcome = ReadOutcome::kDown;
      break;
    }
    // kNeedMore. Level-triggered: when more arrives we are called again. A
    // short read means the socket is drained; asking again would only get EAGAIN.
    if (drained || *budget == 0) {
      outcome = ReadOutcome::kDrained;
      break;
    }
    size_t asked = 0;
    ssize_t n = ReadSocket(fd, *budget, &asked);
    if (n > 0) {
      *budget -= n;
      drained = static_cast<size_t>(n) < asked;
      continue;
    }
    if (n == 0) {
      *down = EndOfStreamStatus(read_.in_frame || read_.pos < read_.end);
      outcome = ReadOutcome::kDown;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      outcome = ReadOutcome::kDrained;
      break;
    }
    *down = absl::UnavailableError(absl::StrCat("read: ", std::strerror(errno)));
    outcome = ReadOutcome::kDown;
    break;
  }
  bool notify;
  {
    std::lock_guard<std::mutex> lock(recv_mu_);
    reader_ = Reader::kNone;
    if (outcome == ReadOutcome::kDown) read_broken_ = true;
    // A receiver that waited because the loop held the role may take it now.
    notify = recv_waiting_ > 0 && deliveries == deliveries_.load(std::memory_order_relaxed);
  }
  if (notify) recv_cv_.notify_all();
  return outcome;
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

bool Peer::failed() {
  std::lock_guard<std::mutex> lock(send_mu_);
  return !send_status_.ok();
}

}  // namespace constellation::net
