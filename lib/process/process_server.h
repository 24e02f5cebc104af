#pragma once

// ProcessServer: the unix-socket loop shared by local mode's bridge and the
// node daemon's agent, the two places that processes' monitors connect to
// (lib/process/local_socket.h). It accepts connections, reads their packets
// (reassembling spawn requests sent in chunks, bounded by kMaxSpawnRequest),
// sends spawn replies and verdicts (from the loop, or replies queued from any
// thread and woken through an eventfd), and closes connections. What the
// packets mean, who may connect, and when a connection is not to be read is
// its Handler's business.
//
// Sending never waits: what a connection's socket has no room for is queued
// (lib/process/packet_queue.h) and sent as room appears, and a connection
// with more than kMaxQueuedPerConnection queued is not read until it drains,
// so a process that never reads cannot make the server hold more.
//
// Connections are named by ids that are never reused (not by their fds), so a
// reply queued for a connection that has closed meanwhile is dropped rather
// than delivered to whoever got the fd next.
//
// Ownership: it owns the listening fd (not the socket file or its directory),
// its connections' fds and its eventfd; `handler` must outlive it.
// Threading: one thread (the loop thread) calls Turn() and every other
// method, and the handler is called on it; QueueReply() and Wake() may be
// called from any thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/process/local_socket.h"
#include "lib/process/packet_queue.h"
#include "lib/process/request_chunks.h"
#include "proto/local.pb.h"

namespace constellation::internal {

class ProcessServer {
 public:
  // A connection's id; ids are never reused.
  using Conn = int;

  class Handler {
   public:
    virtual ~Handler() = default;
    // A connection was accepted from `peer`: false closes it at once (OnClose
    // is not called). The handler says why on stderr if it wants to.
    virtual bool Admit(Conn conn, const PeerCredentials& peer) = 0;
    // Whether not to read `conn` for now: its packets stay in the kernel.
    virtual bool IsHeld(Conn conn) const = 0;
    // Whether `conn` has said who it is: only then are its spawn requests
    // reassembled and handed to OnSpawnRequest; before, they go to OnMessage.
    virtual bool Identified(Conn conn) const = 0;
    // One packet (other than an identified connection's spawn request). An
    // error drops the connection, saying why on stderr.
    virtual absl::Status OnMessage(Conn conn, const pb::LocalMessage& message) = 0;
    // A whole spawn request from an identified connection.
    virtual void OnSpawnRequest(Conn conn, const pb::SpawnRequest& request) = 0;
    // `conn` closed: its peer hung up, broke the protocol, or was dropped.
    virtual void OnClose(Conn conn) = 0;
    // Wake() was called (from another thread); replies queued are sent after.
    virtual void OnWake() {}
  };

  // Packets read from one connection per turn, so one chatty process cannot
  // starve the others.
  static constexpr int kPacketsPerTurn = 64;
  // Bytes queued for a connection past which it is not read. Far above what
  // a process that reads is ever sent (a verdict per watched pid, a reply per
  // request).
  static constexpr size_t kMaxQueuedPerConnection = 8 << 20;

  // Serves `listen_fd` (non-blocking; taken). `name` starts its lines on
  // stderr ("constellation bridge").
  static absl::StatusOr<std::unique_ptr<ProcessServer>> Create(int listen_fd, Handler* handler, std::string name);
  ~ProcessServer();  // closes every connection (no OnClose), the listener and the eventfd
  ProcessServer(const ProcessServer&) = delete;
  ProcessServer& operator=(const ProcessServer&) = delete;

  // A connection made elsewhere (local mode's root, a socketpair), admitted
  // already. Takes `fd` and makes it non-blocking.
  Conn AddConnection(int fd);

  // Also waits for `fd` to be readable, and then calls `on_ready` (on the
  // loop thread, each turn it is readable) until Unwatch(fd). Not owned.
  void Watch(int fd, std::function<void()> on_ready);
  void Unwatch(int fd);

  // One turn: waits up to `timeout_ms` (-1: for ever) for the listener,
  // connections not held, watched fds and Wake(), and handles what is ready.
  void Turn(int timeout_ms);

  // Accepts every connection queued on the listener (and reads each); true
  // if none is left queued. Out of fds (EMFILE and the like) it returns
  // false, and the listener is not polled again until a connection closes or
  // kAcceptRetry has passed: connections wait in the listen queue, and the
  // loop does not spin.
  bool Accept();
  static constexpr std::chrono::milliseconds kAcceptRetry{100};
  bool accept_paused() const { return accept_paused_; }
  // Reads up to kPacketsPerTurn packets of `conn`, unless it is held or gone.
  void Read(Conn conn);
  // Reads every connection (not held) once.
  void ReadAll();
  // Closes `conn`, saying `why` on stderr (when not empty); calls OnClose.
  void Drop(Conn conn, absl::string_view why);

  // Sends `reply` to `conn`, after what is queued for it; what the socket has
  // no room for is queued. Nothing if `conn` is gone.
  void Reply(Conn conn, const pb::SpawnReply& reply);
  // Sends any packet to `conn` (e.g. a ProcessGone), as Reply does.
  void Send(Conn conn, const pb::LocalMessage& message);
  // Bytes queued for `conn` (0 if it is gone).
  size_t queued(Conn conn) const;
  // From any thread: Reply() from the loop thread, soon.
  void QueueReply(Conn conn, pb::SpawnReply reply);
  // From any thread: the loop's current or next Turn() calls OnWake and returns.
  void Wake();

  // Open connections.
  size_t size() const { return conns_.size(); }
  std::vector<Conn> connections() const;

 private:
  struct Connection {
    int fd = -1;
    RequestChunks chunks;  // a spawn request arriving in chunks
    PacketQueue out;       // what its socket had no room for yet
  };
  struct Watched {
    std::function<void()> on_ready;
    uint64_t generation = 0;
  };

  ProcessServer(int listen_fd, int wake_fd, Handler* handler, std::string name)
      : listen_fd_(listen_fd), wake_fd_(wake_fd), handler_(handler), name_(std::move(name)) {}
  Conn Add(int fd);
  void PauseAccepting();
  // Whether to read `conn` now: not held, and not too much queued for it.
  bool Readable(Conn conn, const Connection& connection) const;
  // Sends what is queued for `conn` as far as its socket has room.
  void Flush(Conn conn);
  // Handles one spawn request packet of an identified connection; false if it dropped it.
  bool SpawnPacket(Conn conn, const pb::LocalMessage& message);
  void Woken();

  const int listen_fd_;
  const int wake_fd_;  // eventfd: replies queued, or Wake()
  Handler* const handler_;
  const std::string name_;

  Conn next_conn_ = 1;
  bool accept_paused_ = false;  // out of fds: the listener is not polled until accept_retry_at_
  bool warned_out_of_fds_ = false;
  std::chrono::steady_clock::time_point accept_retry_at_;
  std::map<Conn, Connection> conns_;
  std::map<int, Watched> watched_;  // by fd
  uint64_t next_generation_ = 1;

  std::mutex mu_;
  std::vector<std::pair<Conn, pb::SpawnReply>> replies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace constellation::internal
