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

#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
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
    std::function<void(const Pid&)> want_write;   // a writer hit EAGAIN: wait for POLLOUT
    std::function<void(const Pid&)> want_flush;   // a stream of sends is queueing: write them in one go
    std::function<void(const Pid&)> resume_read;  // the inbound queue drained below half the bound
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
  // queue is empty and the peer gone, returns its error.
  absl::Status Recv(absl::Time deadline, InFrame* out);
  // The name a Sender of the peer announced for `fingerprint`, or "<unknown type>".
  std::string TypeName(uint64_t fingerprint);
  bool RecvReady();
  void AddRecvWaiter(Waiter* w);
  void RemoveRecvWaiter(Waiter* w);

  // ---- Loop thread ----

  // Writes now go to `fd` (the peer's connection); held frames are released.
  WriteResult Attach(int fd);
  // Stops writing to the fd; waits for a user thread's write in progress (a
  // non-blocking writev, short).
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
  // True while another frame may be delivered; when false, the reader must stop
  // until hooks.resume_read runs.
  bool InboundHasRoom();
  // Queues an incoming frame, swapping *payload for an empty reused buffer.
  void Deliver(uint64_t fingerprint, std::string* payload);
  void SetTypeName(uint64_t fingerprint, std::string name);
  // From now on, incoming frames are dropped (the process is exiting).
  void DiscardInbound();
  // The peer is gone: queued outgoing frames are dropped, senders and receivers
  // (after draining) get `status`. The first status sticks.
  void Fail(absl::Status status);
  bool failed();

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
  std::condition_variable recv_cv_;
  Ring<InFrame> in_;  // guarded by recv_mu_
  size_t in_bytes_ = 0;
  std::string spare_in_;                 // guarded by recv_mu_; a big buffer kept for reuse
  std::atomic<uint64_t> deliveries_{0};  // frames received, ever: tells a ping-pong from a stream
  bool read_paused_ = false;             // the loop stopped reading: in_ was full
  bool discard_ = false;
  std::vector<Waiter*> recv_waiters_;
  absl::flat_hash_map<uint64_t, std::string> type_names_;
  absl::Status recv_status_;
};

}  // namespace constellation::net
