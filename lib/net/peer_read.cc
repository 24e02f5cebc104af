// Peer's receive side: Recv and the read role (a thread blocked in recv
// reads the socket itself), frame parsing, and the loop's reads. Same class
// and locking rules as peer.cc; see peer.h.
#include "lib/net/busy_poll.h"
#include "lib/net/mid_frame_spin.h"
#include "lib/net/peer.h"
#include "lib/net/peer_internal.h"

namespace constellation::net {

using namespace peer_internal;

// ---- Receivers ----

bool Peer::CanUserReadLocked() const {
  return read_fd_ >= 0 && reader_ == Reader::kNone && !recv_.paused() && !read_broken_ && !recv_.discarding();
}

absl::Status Peer::Recv(absl::Time deadline, InFrame* out, bool read_socket) {
  UniqueLock lock(&recv_.mu());
  bool looked = false;
  while (recv_.empty() && recv_.status().ok()) {
    if (has_report_.load(std::memory_order_relaxed)) {
      if (absl::Status report = TakeReport(); !report.ok()) return report;
    }
    if (deadline != absl::InfiniteFuture() && absl::Now() >= deadline) {
      // In user mode the loop does not watch the socket (see ReadAsUser):
      // look at it without waiting, once.
      if (looked || !read_socket || !user_mode_ || !CanUserReadLocked()) break;
      looked = true;
      if (ReadAsUser(absl::InfinitePast(), out)) return absl::OkStatus();
      continue;
    }
    if (CanUserReadLocked()) {
      // The fast path: nothing queued and nobody reading, so this thread reads
      // the socket itself instead of waiting for the loop to wake it.
      if (ReadAsUser(deadline, out)) return absl::OkStatus();
      continue;
    }
    if (const int64_t spin_ns = BusyPollNs(); spin_ns > 0 && !RecvWakeLocked()) {
      // Busy-polling (opt-in): watch the queue a while before sleeping.
      int64_t spin_until_ns = 0;
      while (Spinning(&spin_until_ns, spin_ns, deadline)) {
        recv_.mu().Unlock();  // (Spinning yields the CPU between two looks)
        recv_.mu().Lock();
        if (RecvWakeLocked()) break;
      }
    }
    ++recv_waiting_;
    while (!RecvWakeLocked() && recv_.cv().WaitUntil(&recv_.mu(), deadline)) {
    }
    const bool ready = RecvWakeLocked();
    --recv_waiting_;
    if (!ready) break;
  }
  if (recv_.empty()) {
    if (!recv_.status().ok()) {
      told_.store(true, std::memory_order_relaxed);
      return recv_.status();
    }
    return absl::DeadlineExceededError(absl::StrCat("recv from ", pid_.to_string(), ": nothing arrived in time"));
  }
  const bool resume = recv_.Pop(out);
  lock.Unlock();
  if (resume) hooks_.resume_read(pid_);
  return absl::OkStatus();
}

absl::Status Peer::RecvFor(absl::Duration timeout, InFrame* out) {
  {
    UniqueLock lock(&recv_.mu());
    if (!recv_.empty()) {  // as Recv does with a frame queued, but reading no clock
      const bool resume = recv_.Pop(out);
      lock.Unlock();
      if (resume) hooks_.resume_read(pid_);
      return absl::OkStatus();
    }
  }
  return Recv(absl::Now() + timeout, out);
}

bool Peer::RecvWakeLocked() const {
  return !recv_.empty() || !recv_.status().ok() || CanUserReadLocked() || has_report_.load(std::memory_order_relaxed);
}

bool Peer::ReadAsUser(absl::Time deadline, InFrame* out) {
  reader_ = Reader::kUser;
  ++claims_;
  const int64_t claimed_ns = MonotonicNs();
  const int fd = read_fd_;
  const int ep = read_ep_;
  const uint64_t conn = read_conn_;
  bool loop_watches = !user_mode_;  // the socket is in the epoll set the loop watches
  recv_.mu().Unlock();
  bool got = false;
  // recv before poll: a deadline already past, or the last recv filled what it asked for.
  bool may_read = deadline == absl::InfinitePast();
  // Busy-polling (opt-in): before sleeping in poll, spin with non-blocking recvs.
  const int64_t spin_ns = may_read ? 0 : BusyPollNs();
  int64_t spin_until_ns = 0;
  // Part of a frame read: look again rather than sleep while its bytes come fast.
  MidFrameSpin mid_frame;
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
    if (got) break;     // kNeedMore: what is left in the socket waits for the next recv (or the lease)
    bool wait = false;  // this recv sleeps until bytes arrive
    if (!may_read) {
      if (loop_watches) {
        SetInterest(ep, fd, 0);
        loop_watches = false;
      }
      if (!Spinning(&spin_until_ns, spin_ns, deadline) && !SpinningMidFrame(&mid_frame, deadline)) {
        const Sleep sleep = HowToSleep(fd, deadline);
        if (sleep == Sleep::kExpired || (sleep == Sleep::kInPoll && !PollReadable(fd, deadline))) break;
        wait = sleep == Sleep::kInRecv;
      }
    }
    FrameReader::ReadResult read = read_.ReadSome(fd, std::numeric_limits<size_t>::max(), wait);
    if (read.what == FrameReader::Read::kData) {
      may_read = read.filled;
      mid_frame.Arrived(read.bytes);
      continue;
    }
    if (read.what == FrameReader::Read::kWouldBlock) {
      if (may_read && deadline == absl::InfinitePast()) break;
      may_read = false;
      continue;
    }
    down = std::move(read.down);  // kEnd, kError
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
  if (!loop_watches && (!down.ok() || MonotonicNs() - claimed_ns > kStickyHoldNs)) {
    SetInterest(ep, fd, EPOLLIN);  // level-triggered: bytes already waiting wake the loop
    loop_watches = true;
  }
  recv_.mu().Lock();
  reader_ = Reader::kNone;
  user_mode_ = !loop_watches;
  if (!down.ok()) read_broken_ = true;
  const bool lease = user_mode_ && !lease_active_;
  if (lease) lease_active_ = true;
  const bool resume = loop_parked_;
  loop_parked_ = false;
  if (detach_waiting_) recv_.cv().NotifyAll();
  if (resume || lease || !down.ok()) {
    recv_.mu().Unlock();
    if (!down.ok()) hooks_.read_down(pid_, conn, std::move(down));
    if (lease) hooks_.lease(pid_, conn);
    if (resume) hooks_.resume_read(pid_);
    recv_.mu().Lock();
  }
  return got;
}

bool Peer::SpinningMidFrame(MidFrameSpin* spin, absl::Time deadline) {
  // Only in a big frame, to its last byte (a sleep before the last piece of a
  // 1 MiB value cost as much as all the others). The rest of a small frame
  // comes in one piece, and a stream of small frames is read in fewer, bigger
  // reads by a receiver that sleeps (spinning there cost 10% of the 8-byte
  // rate).
  if (read_.frame_length() < MidFrameSpin::kWindowBytes || !read_.mid_frame()) return false;
  if (!spin->Spin(MonotonicNs())) return false;
  if (deadline != absl::InfiniteFuture() && absl::Now() >= deadline) return false;
  sched_yield();  // as Spinning does: a sender on this CPU runs
  return true;
}

Peer::Sleep Peer::HowToSleep(int fd, absl::Time deadline) {
  absl::Duration want = absl::InfiniteDuration();
  if (deadline != absl::InfiniteFuture()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return Sleep::kExpired;
    if (left < kRecvTimeoutMin) return Sleep::kInPoll;
    want = left - kRecvTimeoutSlack;
  }
  // The kernel's timer wheel may end a timeout up to 1/8 late, so a finite
  // one is set to 3/4 of `want`, and the one already set will do if it is at
  // most 4/5 of `want` (ending by 9/10) and not much shorter (ending early
  // costs only another look): a loop of recv_for(20 s) sets it once.
  if (recv_timeout_ == want || (recv_timeout_ <= want * 4 / 5 && recv_timeout_ >= want / 2)) return Sleep::kInRecv;
  const absl::Duration set = want == absl::InfiniteDuration() ? want : want * 3 / 4;
  const timeval tv = set == absl::InfiniteDuration() ? timeval{0, 0} : absl::ToTimeval(set);  // 0: none
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) return Sleep::kInPoll;
  recv_timeout_ = set;
  return Sleep::kInRecv;
}

void Peer::LeaveUserModeLocked(Reader as) {
  // Called with the role free (reader_ kNone) and user_mode_ set: claims the
  // role for the epoll_ctl, which only a role holder makes.
  reader_ = as;
  user_mode_ = false;
  const int fd = read_fd_;
  const int ep = read_ep_;
  recv_.mu().Unlock();
  SetInterest(ep, fd, EPOLLIN);  // level-triggered: bytes already waiting wake the loop now
  recv_.mu().Lock();
  reader_ = Reader::kNone;
  // Detach, or a receiver that found the role taken, waits for it.
  if (detach_waiting_ || recv_waiting_ > 0) recv_.cv().NotifyAll();
  if (loop_parked_) {  // the loop found the role taken meanwhile
    loop_parked_ = false;
    recv_.mu().Unlock();
    hooks_.resume_read(pid_);
    recv_.mu().Lock();
  }
}

absl::Duration Peer::LeaseStart() {
  MutexLock lock(&recv_.mu());
  lease_active_ = true;
  lease_seen_ = claims_;
  return kLeasePeriod;
}

absl::Duration Peer::LeaseTick() {
  UniqueLock lock(&recv_.mu());
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
  LeaveUserModeLocked(Reader::kLoop);
  return absl::ZeroDuration();
}

std::string Peer::TypeName(uint64_t fingerprint) { return recv_.TypeName(fingerprint); }

bool Peer::RecvReady() {
  MutexLock lock(&recv_.mu());
  return !recv_.empty() || !recv_.status().ok() || has_report_.load(std::memory_order_relaxed);
}

bool Peer::UserReading() {
  MutexLock lock(&recv_.mu());
  return reader_ == Reader::kUser;
}

void Peer::AddRecvWaiter(Waiter* w) {
  UniqueLock lock(&recv_.mu());
  recv_.AddWaiter(w);
  // select waits for the loop to deliver: the loop must watch the socket.
  if (user_mode_ && reader_ == Reader::kNone && read_fd_ >= 0) LeaveUserModeLocked(Reader::kUser);
}

void Peer::RemoveRecvWaiter(Waiter* w) { recv_.RemoveWaiter(w); }

Peer::Parse Peer::ParseBuffered(InFrame* take, FrameHeader* control, absl::Status* bad) {
  // One batch: recv_mu_ is taken once for every complete frame buffered (a
  // read of many small frames costs one lock and wakes receivers once), and
  // dropped only for an Open frame. Parsing copies at most the read buffer
  // (kBufferSize) under it.
  UniqueLock lock(&recv_.mu());
  // (A frame for `take` needs no room: it never enters the queue.)
  auto admit = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // recv_mu_ is held (above)
    if (take != nullptr || recv_.HasRoom()) return true;
    recv_.set_paused(true);
    return false;
  };
  size_t delivered = 0;
  Parse result = Parse::kNeedMore;
  bool more = true;
  while (more) {
    switch (read_.Parse(admit, bad)) {
      case FrameReader::Parsed::kNeedMore:
        result = Parse::kNeedMore;
        more = false;
        continue;
      case FrameReader::Parsed::kRefused:
        result = Parse::kPaused;
        more = false;
        continue;
      case FrameReader::Parsed::kBad:
        result = Parse::kBad;
        more = false;
        continue;
      case FrameReader::Parsed::kFrame:
        break;
    }
    const FrameHeader& header = read_.header();
    std::string* payload = read_.payload();
    switch (header.kind) {
      case FrameKind::kData:
        if (take != nullptr) {
          recv_.TakeDirect(header.fingerprint, payload, take);
          result = Parse::kTook;
          more = false;
          continue;
        }
        recv_.Deliver(header.fingerprint, payload);
        ++delivered;
        continue;
      case FrameKind::kOpen:
        // Handled here, not by the loop: a receiver may need the name at once.
        lock.Unlock();
        SetTypeName(header.fingerprint, std::string(*payload));
        lock.Lock();
        continue;
      default:
        *control = header;
        result = Parse::kControl;
        more = false;
        continue;
    }
  }
  if (delivered > 0) recv_.FireWaiters();  // under the lock: a waiter may go once it is removed
  lock.Unlock();
  // After unlocking, so the woken receiver does not block again on recv_mu_.
  if (delivered > 0) recv_.cv().NotifyAll();
  return result;
}

void Peer::AttachRead(int fd, int ep, uint64_t conn) {
  {
    MutexLock lock(&recv_.mu());
    // reader_ is kNone: Detach took the role back from the last connection.
    read_fd_ = fd;
    read_ep_ = ep;
    read_conn_ = conn;
    read_broken_ = false;
    loop_parked_ = false;
    user_mode_ = false;
    lease_active_ = false;
    read_.Reset();
    recv_timeout_ = absl::InfiniteDuration();  // a new socket has none
  }
  recv_.cv().NotifyAll();  // a receiver waiting for a connection may read it now
}

Peer::ReadOutcome Peer::LoopRead(size_t* budget, FrameHeader* control, absl::Status* down) {
  int fd;
  int ep;
  bool rearm;
  uint64_t deliveries;
  {
    MutexLock lock(&recv_.mu());
    if (read_fd_ < 0 || read_broken_) return ReadOutcome::kBroken;
    if (reader_ == Reader::kUser) {
      loop_parked_ = true;
      return ReadOutcome::kBusy;
    }
    if (recv_.paused()) {
      if (!recv_.discarding()) return ReadOutcome::kPaused;
      recv_.set_paused(false);
    }
    reader_ = Reader::kLoop;
    fd = read_fd_;
    ep = read_ep_;
    rearm = user_mode_;
    user_mode_ = false;
    deliveries = recv_.deliveries();
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
    FrameReader::ReadResult read = read_.ReadSome(fd, *budget);
    if (read.what == FrameReader::Read::kData) {
      *budget -= read.bytes;
      drained = !read.filled;
      continue;
    }
    if (read.what == FrameReader::Read::kWouldBlock) {
      outcome = ReadOutcome::kDrained;
      break;
    }
    *down = std::move(read.down);  // kEnd, kError
    outcome = ReadOutcome::kDown;
    break;
  }
  bool notify;
  {
    MutexLock lock(&recv_.mu());
    reader_ = Reader::kNone;
    if (outcome == ReadOutcome::kDown) read_broken_ = true;
    // A receiver that waited because the loop held the role may take it now.
    notify = recv_waiting_ > 0 && deliveries == recv_.deliveries();
  }
  if (notify) recv_.cv().NotifyAll();
  return outcome;
}

}  // namespace constellation::net
