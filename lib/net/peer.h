#pragma once

// Peer: everything one process keeps about one remote process it has channels
// with: the outgoing frame queue and the write side of the current connection,
// the incoming frame queue, and the peer's error once it is gone. Shared
// (std::shared_ptr) by the Sender/Receiver objects to that process and by the
// DataPlane; it outlives any one TCP connection (see DataPlane).
//
// Threading: the "Senders" and "Receivers" sections are called by user threads,
// several at once; the "loop" section only by the DataPlane's loop thread.
// Locks: send_mu_ and recv_mu_ are independent (a thread holding send_mu_ may
// take recv_mu_, never the reverse). Nobody holds either during a syscall: a
// thread writes the socket while holding the *write role* (writing_), which it
// claims and releases under send_mu_.
//
// The read side mirrors it with a *read role* (reader_), claimed and released
// under recv_mu_: whoever holds it reads the socket and owns the frame parser
// (read_). The loop takes it when the socket is readable; a thread blocked in
// Recv with nothing queued takes it and reads the socket itself (poll, then
// recv), so a message on an idle channel wakes only that thread. Before it
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
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/core/pid.h"
#include "lib/net/frame.h"
#include "lib/net/ring.h"
#include "lib/net/waiter.h"

namespace constellation::net {

struct InFrame {
  uint64_t fingerprint = 0;
  std::string payload;
};

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
  bool SendReady();
  void AddSendWaiter(Waiter* w);
  void RemoveSendWaiter(Waiter* w);

  // ---- Receivers (any thread) ----

  // Takes the oldest incoming frame into *out (swapping buffers, so out's old
  // buffer is reused); waits until `deadline` (DeadlineExceeded). Once the
  // queue is empty and the peer gone, returns its error. With nothing queued
  // and the read role free, reads the socket itself (see above); with a
  // deadline already past (try_recv) it only looks (one recv) in user mode.
  absl::Status Recv(absl::Time deadline, InFrame* out);
  // The name a Sender of the peer announced for `fingerprint`, or "<unknown type>".
  std::string TypeName(uint64_t fingerprint);
  bool RecvReady();
  // For tests: a user thread holds the read role now; frames a user thread
  // read from the socket itself and took at once (the fast path), ever.
  bool UserReading();
  uint64_t fast_path_frames() const { return fast_path_frames_.load(std::memory_order_relaxed); }
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
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }
  bool mid_frame() const { return mid_frame_.load(std::memory_order_relaxed); }
  // Stops writing to and reading from the connection; waits for a user thread's
  // write in progress (a non-blocking writev, short) and takes the read role
  // back from a user thread (shutdown(SHUT_RD) wakes its poll). The fd stays
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

 private:
  struct OutFrame {
    char header[kFrameHeaderSize];
    std::string payload;
    bool held = false;
  };
  void PushLocked(const FrameHeader& header, std::string* payload);
  void ConsumeLocked(size_t written);
  // Called with the write role claimed; releases it. Drops and retakes `lock`.
  WriteResult WriteLocked(std::unique_lock<std::mutex>& lock);
  bool SendRoomLocked() const;
  void NotifySendLocked();

  // ---- The read role ----
  enum class Reader { kNone, kLoop, kUser };
  enum class Parse { kNeedMore, kTook, kControl, kPaused, kBad };
  // The frame parser; touched only by the holder of the read role.
  struct ReadState {
    std::unique_ptr<char[]> buffer;  // bytes read but not yet parsed: [pos, end)
    size_t pos = 0;
    size_t end = 0;
    bool in_frame = false;  // header parsed, payload being read
    FrameHeader header;
    // [0, filled) read; the size grows as bytes arrive (MakeRoom), never
    // ahead of them to what the header claims.
    std::string payload;
    size_t filled = 0;
  };
  // Role held, in a frame: at least one byte of room after `filled`.
  void MakeRoom();
  bool CanUserReadLocked() const;
  // Role held. Parses buffered bytes until a control frame, a full queue, bad
  // bytes or the end of the buffer. Data frames are queued, except that the
  // first goes to *take when take is not null (kTook).
  Parse ParseBuffered(InFrame* take, FrameHeader* control, absl::Status* bad);
  // Role held. One recv(MSG_DONTWAIT) of at most `max` bytes into the buffer,
  // or straight into the payload of a big frame; *asked: the size asked for.
  // Returns what recv returned (errno kept).
  ssize_t ReadSocket(int fd, size_t max, size_t* asked);
  // Role just claimed by this user thread (lock held, and held again on return,
  // the role released). True when a data frame was taken into *out.
  bool ReadAsUser(std::unique_lock<std::mutex>& lock, absl::Time deadline, InFrame* out);
  // Puts the socket back in the loop's epoll set (user_mode_ set, role free),
  // holding the role as `as` meanwhile; drops and retakes `lock`.
  void LeaveUserModeLocked(std::unique_lock<std::mutex>& lock, Reader as);
  bool HasRoomLocked() const;
  void DeliverLocked(uint64_t fingerprint, std::string* payload);

  const Pid pid_;
  const PeerLimits limits_;
  const Hooks hooks_;

  std::mutex send_mu_;
  std::condition_variable send_cv_;
  Ring<OutFrame> out_;     // guarded by send_mu_; slots never move (see WriteLocked)
  size_t out_offset_ = 0;  // bytes of out_.front() already written
  size_t out_bytes_ = 0;   // payload bytes in out_
  std::string spare_out_;  // a big buffer kept for reuse (see peer.cc)
  std::vector<Waiter*> send_waiters_;
  int fd_ = -1;                // the connection's socket, or -1
  bool writing_ = false;       // a thread holds the write role
  bool write_armed_ = false;   // the loop waits for POLLOUT; user threads only queue
  bool holding_ = false;       // frames queued now are held (a Close is in flight)
  bool flush_posted_ = false;  // the loop will write what is queued (batching a stream)
  int64_t last_direct_write_ns_ = 0;
  uint64_t deliveries_at_write_ = 0;
  absl::Status send_status_;  // the peer's error

  std::mutex recv_mu_;
  std::condition_variable recv_cv_;  // frames, failure, the read role coming free
  // The read side of the connection, guarded by recv_mu_.
  int read_fd_ = -1;  // -1: no open connection
  int read_ep_ = -1;
  uint64_t read_conn_ = 0;
  Reader reader_ = Reader::kNone;
  bool loop_parked_ = false;     // the loop found the role taken and stopped watching
  bool read_broken_ = false;     // the connection's end was seen (and reported): nobody reads it
  bool detach_waiting_ = false;  // Detach waits for a user thread to release the role
  // User mode: the socket is out of the loop's epoll set although perhaps
  // nobody holds the role (see ReadAsUser); changed only by a role holder.
  bool user_mode_ = false;
  uint64_t claims_ = 0;        // the role taken by user threads, ever
  bool lease_active_ = false;  // the loop's lease timer runs (or is about to)
  uint64_t lease_seen_ = 0;    // claims_ at the last tick
  int recv_waiting_ = 0;       // threads waiting on recv_cv_ in Recv
  ReadState read_;             // the read role's
  Ring<InFrame> in_;           // guarded by recv_mu_
  size_t in_bytes_ = 0;
  std::string spare_in_;                 // guarded by recv_mu_; a big buffer kept for reuse
  std::atomic<uint64_t> deliveries_{0};  // frames received, ever: tells a ping-pong from a stream
  std::atomic<uint64_t> fast_path_frames_{0};
  std::atomic<uint64_t> bytes_read_{0};  // written by the read role's holder
  std::atomic<bool> mid_frame_{false};   // likewise
  bool read_paused_ = false;             // reading stopped: in_ was full
  bool discard_ = false;
  std::vector<Waiter*> recv_waiters_;
  absl::flat_hash_map<uint64_t, std::string> type_names_;
  absl::Status recv_status_;

  // ReportOnce's status; has_report_ lets Send and Recv check it without the lock.
  std::atomic<bool> has_report_{false};
  std::mutex report_mu_;                // taken after send_mu_ or recv_mu_, never before
  absl::Status report_;                 // guarded by report_mu_
  uint64_t lost_bytes_ = 0;             // guarded by send_mu_
  uint64_t written_on_connection_ = 0;  // guarded by send_mu_
  std::atomic<bool> told_{false};       // a Send or Recv returned the peer's error
  // The report, if any, cleared. Any lock may be held.
  absl::Status TakeReport();
};

}  // namespace constellation::net
