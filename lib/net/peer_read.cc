// Peer's receive side: Recv and the read role (a thread blocked in recv
// reads the socket itself), frame parsing, and the loop's reads. Same class
// and locking rules as peer.cc; see peer.h.
#include "lib/net/peer.h"
#include "lib/net/peer_internal.h"

namespace constellation::net {

using namespace peer_internal;

// ---- Receivers ----

bool Peer::CanUserReadLocked() const {
  return read_fd_ >= 0 && reader_ == Reader::kNone && !read_paused_ && !read_broken_ && !discard_;
}

absl::Status Peer::Recv(absl::Time deadline, InFrame* out) {
  std::unique_lock<std::mutex> lock(recv_mu_);
  bool looked = false;
  while (in_.empty() && recv_status_.ok()) {
    if (has_report_.load(std::memory_order_relaxed)) {
      if (absl::Status report = TakeReport(); !report.ok()) return report;
    }
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
    bool ready = WaitUntil(recv_cv_, lock, deadline, [&] {
      return !in_.empty() || !recv_status_.ok() || CanUserReadLocked() || has_report_.load(std::memory_order_relaxed);
    });
    --recv_waiting_;
    if (!ready) break;
  }
  if (in_.empty()) {
    if (!recv_status_.ok()) {
      told_.store(true, std::memory_order_relaxed);
      return recv_status_;
    }
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
  return !in_.empty() || !recv_status_.ok() || has_report_.load(std::memory_order_relaxed);
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
      if (available < kFrameHeaderSize) {
        mid_frame_.store(available > 0, std::memory_order_relaxed);
        return Parse::kNeedMore;
      }
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
          mid_frame_.store(false, std::memory_order_relaxed);  // we stopped reading, nobody stalls
          return Parse::kPaused;
        }
      }
      r.pos += kFrameHeaderSize;
      r.header = header;
      r.payload.clear();  // keeps its capacity; nothing is allocated on the header's claim
      r.filled = 0;
      r.in_frame = true;
      available -= kFrameHeaderSize;
    }
    size_t take_bytes = std::min<size_t>(available, r.header.length - r.filled);
    while (take_bytes > 0) {
      MakeRoom();
      size_t n = std::min(take_bytes, r.payload.size() - r.filled);
      std::memcpy(r.payload.data() + r.filled, r.buffer.get() + r.pos, n);
      r.pos += n;
      r.filled += n;
      take_bytes -= n;
    }
    if (r.filled < r.header.length) {
      mid_frame_.store(true, std::memory_order_relaxed);
      return Parse::kNeedMore;
    }
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

void Peer::MakeRoom() {
  ReadState& r = read_;
  if (r.filled < r.payload.size()) return;
  // Geometric growth as bytes arrive: at most about twice what has arrived
  // (or the capacity this buffer already has, a recycled one's), capped at
  // the frame's length. A resize within the capacity allocates nothing.
  size_t target = std::max({r.payload.capacity(), 2 * r.payload.size(), kReadBufferSize});
  r.payload.resize(std::min<uint64_t>(target, r.header.length));
}

ssize_t Peer::ReadSocket(int fd, size_t max, size_t* asked) {
  ReadState& r = read_;
  ssize_t n;
  if (r.in_frame && r.pos == r.end && r.header.length - r.filled >= kDirectRead) {
    MakeRoom();
    *asked = std::min<size_t>(r.payload.size() - r.filled, max);
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
  if (n > 0) bytes_read_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
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
    bytes_read_.store(0, std::memory_order_relaxed);
    mid_frame_.store(false, std::memory_order_relaxed);
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

}  // namespace constellation::net
