#pragma once

// Peer: everything one process keeps about one remote process it has channels
// with: the outgoing frame queue and the write side of the current connection,
// the incoming frame queue, and the peer's error once it is gone. Shared
// (std::shared_ptr) by the Sender/Receiver objects to that process and by the
// DataPlane; it outlives any one TCP connection (see DataPlane).
//
// Threading: the "Senders" and "Receivers" sections are called by user threads,
// several at once; the "loop" section only by the DataPlane's loop thread.
// Locks: send_mu_ (SendQueue's, send_.mu()) and recv_mu_ (RecvQueue's,
// recv_.mu()) are independent (a thread holding send_mu_ may take recv_mu_,
// never the reverse); report_mu_ is taken last, under either or none.
// Members are annotated with the lock that guards them (checked by clang's
// -Wthread-safety, tools/thread_safety.sh); read_ follows the read role
// instead, and the write role decides who pops send_ and writes the socket.
// Hooks are called with no lock held. Nobody holds a lock during a syscall: a
// thread writes the socket while holding the *write role* (writing_), which it
// claims and releases under send_mu_.
//
// The read side mirrors it with a *read role* (reader_), claimed and released
// under recv_mu_: whoever holds it reads the socket and owns the frame parser
// (read_). The loop takes it when the socket is readable; a thread blocked in
// Recv with nothing queued takes it and reads the socket itself (it sleeps in
// a blocking recv, see HowToSleep), so a message on an idle channel wakes only
// that thread. Before it
// waits, a user thread takes the socket out of the connection's own epoll set
// (which the loop watches, see Link), so the loop is not woken; after a short
// wait it leaves it out when it releases the role ("user mode": the next recv
// needs no epoll_ctl, and a reply arriving between two recvs wakes nobody).
// The loop takes the socket back when no recv came for a lease period
// (LeaseTick), when select waits (AddRecvWaiter) and whenever the loop reads
// (LoopRead); a recv after a long wait puts it back itself. Only a holder of
// the role changes the epoll set. Control frames a user thread reads, and EOF
// or errors it sees, are posted to the loop (hooks), which owns the
// connection state.

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/core/internal_only.h"
#include "lib/core/pid.h"
#include "lib/net/frame.h"
#include "lib/net/frame_reader.h"
#include "lib/net/mid_frame_spin.h"
#include "lib/net/mutex.h"
#include "lib/net/recv_queue.h"
#include "lib/net/send_bursts.h"
#include "lib/net/send_queue.h"
#include "lib/net/waiter.h"

namespace constellation::net {

struct PeerLimits {
  size_t max_bytes = 4 << 20;  // per direction; one frame is always admitted below the bound
  size_t max_frames = 1024;    // per direction
};

class Peer {
 public:
  enum class WriteResult { kDone, kBlocked, kError, kIdle };
  // Hooks into the DataPlane, posted to its loop; called from any thread.
  struct Hooks {
    std::function<void(const Pid&)> want_write;  // a writer hit EAGAIN: wait for POLLOUT
    std::function<void(const Pid&)> want_flush;  // a stream of sends is queueing: write them in one go
    // The inbound queue drained below half the bound, or a user thread released
    // the read role while the loop had stopped watching the socket: read again.
    std::function<void(const Pid&)> resume_read;
    // A user thread holding the read role read a control frame (Close, CloseAck,
    // CloseNak) of connection `conn`, or saw it end (EOF, error, bad bytes).
    std::function<void(const Pid&, uint64_t conn, const FrameHeader&)> control;
    std::function<void(const Pid&, uint64_t conn, absl::Status)> read_down;
    // A user thread left connection `conn` out of the loop's epoll set (user
    // mode): (re)start the lease timer (LeaseStart, LeaseTick).
    std::function<void(const Pid&, uint64_t conn)> lease;
  };
  enum class ReadOutcome {
    kDrained,  // the socket is drained (or the read budget spent): wait for readiness
    kBusy,     // a user thread holds the read role: stop watching until hooks.resume_read
    kBroken,   // nothing to read here (detached, or its end was already reported): stop watching
    kPaused,   // the inbound queue is full: stop reading until hooks.resume_read
    kControl,  // *control is a control frame for the owner; call again for more
    kDown,     // *down says why the connection is unusable (EOF, error, bad bytes)
  };

  Peer(const Pid& pid, const PeerLimits& limits, Hooks hooks);
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  const Pid& pid() const { return pid_; }

  // ---- Senders (any thread) ----

  // Queues a data frame of type `fingerprint` whose payload is *payload, and
  // swaps *payload for an empty recycled buffer. Before a channel's first frame
  // (*opened false) also queues an Open frame naming the type. Writes from the
  // calling thread when nobody else is writing. Waits while the bound is
  // reached, until `deadline` (DeadlineExceeded, *payload untouched). Returns
  // the peer's error once it is gone.
  absl::Status Send(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string* payload,
                    absl::Time deadline);
  // Send for a payload in the caller's memory, `bytes`, read only until this
  // returns. When nothing is queued or being written and the payload is big
  // (kInPlaceMin), header and payload go out from where they are in one
  // sendmsg; what the socket did not take is written on from there while the
  // connection makes progress (unless `deadline` has passed: try_send), and
  // copied into the queue once it stops (AwaitLentLocked). Otherwise the
  // payload is copied into *scratch and queued as Send does. Same waits and
  // errors as Send.
  absl::Status SendParts(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string_view bytes,
                         std::string* scratch, absl::Time deadline);
  bool SendReady();
  void AddSendWaiter(Waiter* w);
  void RemoveSendWaiter(Waiter* w);

  // ---- Receivers (any thread) ----

  // Takes the oldest incoming frame into *out (swapping buffers, so out's old
  // buffer is reused); waits until `deadline` (DeadlineExceeded). Once the
  // queue is empty and the peer gone, returns its error. With nothing queued
  // and the read role free, reads the socket itself (see above); with a
  // deadline already past (try_recv) it only looks (one recv) in user mode.
  // With read_socket false and a deadline already past, takes only what is
  // queued, with no syscall: a coroutine's first try (lib/async), after which
  // it sleeps in a blocking Recv or is woken through the loop.
  absl::Status Recv(absl::Time deadline, InFrame* out, bool read_socket = true);
  // Recv until `timeout` from now; reads the clock only when nothing is
  // queued (a stream's receiver finds a frame queued most of the time).
  absl::Status RecvFor(absl::Duration timeout, InFrame* out);
  // The name a Sender of the peer announced for `fingerprint`, or "<unknown type>".
  std::string TypeName(uint64_t fingerprint);
  bool RecvReady();
  // For tests: a user thread holds the read role now; frames a user thread
  // read from the socket itself and took at once (the fast path), ever.
  bool UserReading();
  uint64_t fast_path_frames() const { return recv_.fast_path_frames(); }
  void AddRecvWaiter(Waiter* w);
  void RemoveRecvWaiter(Waiter* w);

  // ---- Loop thread ----

  // Writes now go to `fd` (the peer's connection); held frames are released.
  WriteResult Attach(int fd);
  // Frames are read from now on from `fd`, connection `conn`; `ep` is an epoll
  // set holding only fd (EPOLLIN), watched by the loop. The parser starts afresh.
  void AttachRead(int fd, int ep, uint64_t conn);
  // Claims the read role (unless a user thread holds it or the queue is full),
  // parses what is buffered and reads the socket, at most *budget bytes.
  // Control frames and the end of the connection are returned, with the role
  // released, for the caller to act on.
  ReadOutcome LoopRead(size_t* budget, FrameHeader* control, absl::Status* down);
  // User mode's lease timer: LeaseStart (on hooks.lease) returns the first
  // period; LeaseTick the next one, or zero when the lease ends: the loop
  // watches the socket again (no recv for a whole period), or a recv waiting
  // that long will give it back itself, or there is nothing to watch.
  absl::Duration LeaseStart();
  absl::Duration LeaseTick();
  // For the stall check (any thread; a snapshot): bytes read from the current
  // connection, and whether its parser waits for the rest of a frame.
  uint64_t bytes_read() const { return read_.bytes_read(); }
  bool mid_frame() const { return read_.mid_frame(); }
  // Stops writing to and reading from the connection; waits for a user thread's
  // write in progress (a non-blocking writev, short) and takes the read role
  // back from a user thread (shutdown(SHUT_RD) wakes its recv). The fd stays
  // open (the Link closes it).
  void Detach();
  // Writes what is queued (unless a user thread is writing). kBlocked: wait for POLLOUT.
  WriteResult Flush();
  // If nothing is queued or being written and the inbound queue is empty,
  // queues the control frame `kind` and holds every later frame until Attach/EndHold.
  bool QueueIfIdle(FrameKind kind);
  void QueueControl(FrameKind kind);
  void EndHold();
  bool HasOutgoing();
  // For process exit, once nothing is queued or being written: ends the
  // connection's writing side (shutdown(SHUT_WR): the peer reads EOF after the
  // last frame). False, doing nothing, while something is queued or written.
  bool EndWritingIfIdle();
  bool InboundEmpty();
  void SetTypeName(uint64_t fingerprint, std::string name);
  // From now on, incoming frames are dropped (the process is exiting).
  void DiscardInbound();
  // The peer is gone: queued outgoing frames are dropped, senders and receivers
  // (after draining) get `status`. The first status sticks.
  void Fail(absl::Status status);
  bool failed();
  // An error that ends one operation, not the peer (out of fds for its
  // connection, data lost with a broken connection): the next Send or Recv on
  // this peer returns `status` once (select sees it as ready). A later report
  // replaces one not yet returned. Any thread.
  void ReportOnce(absl::Status status);
  // For the exit report: payload bytes queued and not yet written, and those
  // dropped by Fail (queued when the peer was declared gone) unless a Send or
  // Recv has returned the peer's error since (the program was told). Any thread.
  size_t QueuedBytes();
  uint64_t LostBytes();
  // The peer's error (OK while it is not gone).
  absl::Status status();
  // Frame bytes written to the current (or last) connection since Attach.
  uint64_t WrittenOnConnection();

  // Loop thread, from a timer (the Link's stall check, when the connection is
  // not in the middle of a frame): an idle connection costs little. What was
  // quiet since the last call gives back what traffic made it take: queue
  // slots beyond the first few (with their recycled buffers), the spare
  // buffers, and the read buffer (if the read role is free and the parser is
  // between frames). Never per message: a busy connection keeps its buffers.
  void ReleaseIdleMemory();
  // For tests: what the peer holds now (reader_bytes: 0 while the read role is held).
  struct Memory {
    size_t send_slots = 0;
    size_t recv_slots = 0;
    size_t spare_bytes = 0;
    size_t reader_bytes = 0;
  };
  Memory HeldMemory();

 private:
  // Called with the write role claimed; releases it. Drops send_mu_ during
  // each sendmsg and holds it again on return.
  WriteResult WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_.mu());
  // A sender may go on: room, the peer's error, or a report to return.
  bool SendReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_.mu());
  // Waits (until `deadline`) for room; OK when there is, else the peer's
  // error, a report, or DeadlineExceeded.
  absl::Status AwaitRoomLocked(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_.mu());
  // SendParts' lent frame: waits while the loop writes it from the caller's
  // memory, until it is written whole, the peer fails, `deadline` passes, or
  // the connection makes no progress for kLendPatience; then copies what is
  // left into the queue (TakeBackLent). Either way the value is written or
  // buffered, as Send's would be (a peer's failure is the next call's error,
  // as for a queued frame).
  void AwaitLentLocked(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_.mu());
  // Queues the frame (and the channel's Open frame first if *opened is
  // false), then writes it, leaves it to the loop, or batches it (see Send).
  // Returns the hook to call once send_mu_ is dropped.
  enum class After { kNothing, kWantFlush, kWantWrite };
  After QueueLocked(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string* payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_.mu());
  void CallHook(After after) ABSL_LOCKS_EXCLUDED(send_.mu());

  // ---- The read role ----
  enum class Reader { kNone, kLoop, kUser };
  enum class Parse { kNeedMore, kTook, kControl, kPaused, kBad };
  bool CanUserReadLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(recv_.mu());
  // What a receiver waiting in Recv waits for: a frame, an error, a report,
  // or the read role to take.
  bool RecvWakeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(recv_.mu());
  // Role held, recv_mu_ not. Parses buffered bytes until a control frame, a
  // full queue, bad bytes or the end of the buffer. Data frames are queued,
  // except that the first goes to *take when take is not null (kTook).
  Parse ParseBuffered(InFrame* take, FrameHeader* control, absl::Status* bad) ABSL_LOCKS_EXCLUDED(recv_.mu());
  // Role just claimed by this user thread (recv_mu_ held; dropped while it
  // reads and held again on return, the role released). True when a data
  // frame was taken into *out.
  bool ReadAsUser(absl::Time deadline, InFrame* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(recv_.mu());
  // How a user thread holding the read role sleeps until bytes arrive (role
  // held, no lock): in the recv itself, one syscall where poll and recv are
  // two, with SO_RCVTIMEO (set here when the one set will not do) ending it by
  // `deadline`; or in ppoll when the deadline is near, because the kernel
  // rounds SO_RCVTIMEO up to a scheduler tick and ppoll does not.
  enum class Sleep { kInRecv, kInPoll, kExpired };
  Sleep HowToSleep(int fd, absl::Time deadline);
  // Whether a user thread holding the read role, with part of a big frame
  // read, looks at the socket again instead of sleeping (mid_frame_spin.h);
  // it yields the CPU first, and never spins past `deadline`.
  bool SpinningMidFrame(MidFrameSpin* spin, absl::Time deadline);
  // Puts the socket back in the loop's epoll set (user_mode_ set, role free),
  // holding the role as `as` meanwhile; drops and retakes recv_mu_.
  void LeaveUserModeLocked(Reader as) ABSL_EXCLUSIVE_LOCKS_REQUIRED(recv_.mu());

  const Pid pid_;
  const Hooks hooks_;

  // ---- The send side: send_mu_ (send_.mu()) ----
  // The queue, its lock and what it guards (frames, bytes, spare buffer,
  // waiters, the peer's error).
  SendQueue send_;
  int fd_ ABSL_GUARDED_BY(send_.mu()) = -1;  // the connection's socket, or -1
  // The write role: claimed and released under send_mu_; its holder alone
  // pops send_ and writes fd_ (with send_mu_ dropped during the syscall).
  bool writing_ ABSL_GUARDED_BY(send_.mu()) = false;
  bool write_armed_ ABSL_GUARDED_BY(send_.mu()) = false;   // the loop waits for POLLOUT; user threads only queue
  bool holding_ ABSL_GUARDED_BY(send_.mu()) = false;       // frames queued now are held (a Close is in flight)
  bool flush_posted_ ABSL_GUARDED_BY(send_.mu()) = false;  // the loop will write what is queued (batching a stream)
  SendBursts bursts_ ABSL_GUARDED_BY(send_.mu());          // who writes a send that finds the connection idle

  // ---- The receive side: recv_mu_ (recv_.mu(); taken after send_mu_, never before) ----
  // The queue, its lock and what it guards (frames, bytes, spare buffer,
  // waiters, type names, the peer's error, discarding, paused reading).
  RecvQueue recv_;
  int read_fd_ ABSL_GUARDED_BY(recv_.mu()) = -1;  // -1: no open connection
  int read_ep_ ABSL_GUARDED_BY(recv_.mu()) = -1;
  uint64_t read_conn_ ABSL_GUARDED_BY(recv_.mu()) = 0;
  // The read role: claimed and released under recv_mu_ (see the top).
  Reader reader_ ABSL_GUARDED_BY(recv_.mu()) = Reader::kNone;
  bool loop_parked_ ABSL_GUARDED_BY(recv_.mu()) = false;  // the loop found the role taken and stopped watching
  // The connection's end was seen (and reported): nobody reads it.
  bool read_broken_ ABSL_GUARDED_BY(recv_.mu()) = false;
  bool detach_waiting_ ABSL_GUARDED_BY(recv_.mu()) = false;  // Detach waits for a user thread to release the role
  // User mode: the socket is out of the loop's epoll set although perhaps
  // nobody holds the role (see ReadAsUser); changed only by a role holder.
  bool user_mode_ ABSL_GUARDED_BY(recv_.mu()) = false;
  uint64_t claims_ ABSL_GUARDED_BY(recv_.mu()) = 0;        // the role taken by user threads, ever
  bool lease_active_ ABSL_GUARDED_BY(recv_.mu()) = false;  // the loop's lease timer runs (or is about to)
  uint64_t lease_seen_ ABSL_GUARDED_BY(recv_.mu()) = 0;    // claims_ at the last tick
  int recv_waiting_ ABSL_GUARDED_BY(recv_.mu()) = 0;       // threads waiting on recv_.cv() in Recv
  // Not guarded by a lock but by the read role: only its holder touches it
  // (or a thread holding recv_mu_ while nobody holds the role).
  FrameReader read_;
  // The SO_RCVTIMEO set on the read socket (InfiniteDuration: none); the
  // read role's, like read_.
  absl::Duration recv_timeout_ = absl::InfiniteDuration();

  // ---- ReportOnce's status: report_mu_ (taken after either, never before) ----
  // has_report_ lets Send and Recv check for one without the lock.
  std::atomic<bool> has_report_{false};
  Mutex report_mu_ ABSL_ACQUIRED_AFTER(send_.mu(), recv_.mu());
  absl::Status report_ ABSL_GUARDED_BY(report_mu_);
  std::atomic<bool> told_{false};  // a Send or Recv returned the peer's error
  // The report, if any, cleared. Any lock may be held.
  absl::Status TakeReport() ABSL_LOCKS_EXCLUDED(report_mu_);
};

}  // namespace constellation::net
