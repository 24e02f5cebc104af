#pragma once

// DataPlane: one process's end of the data plane. It owns the process's
// listening socket, one EventLoop thread, and one Peer per remote process it
// has channels with, each served by at most one open TCP connection (a Link).
// See docs/channels.md for the wire format, connection lifecycle, bounds and
// error semantics.
//
// Threading: Acquire/Release/FlushForExit and the accessors may be called from
// any thread except the loop's. Every other method runs on the loop thread.
// Sender/Receiver objects (channel.h) must be destroyed before the DataPlane
// they use. The process-wide instance (StartDataPlane) is never destroyed.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/core/pid.h"
#include "lib/net/event_loop.h"
#include "lib/net/link.h"
#include "lib/net/peer.h"
#include "lib/net/unique_fd.h"

namespace constellation::net {

class DataPlane : public LinkOwner {  // LinkOwner: for its own Links only
 public:
  struct Options {
    // The deployment's secret (kSecretSize bytes, handshake.h): only processes
    // holding it are admitted. Without one, every connection is refused.
    std::string secret;
    PeerLimits limits;
    // A connection with no channel on either side and nothing in flight is closed after this long.
    absl::Duration idle_timeout = absl::Seconds(2);
    // A connection we dial must finish connecting and its hello within this long.
    absl::Duration handshake_timeout = absl::Seconds(10);
    // An accepted connection whose dialer has not proved itself within this long is closed.
    absl::Duration hello_timeout = absl::Seconds(5);
    // At most this many accepted connections may be proving themselves at once;
    // a new one beyond it evicts the oldest (which is told kBusy).
    size_t max_unauthenticated = 64;
    // An open connection that stays in the middle of a frame this long with
    // no byte arriving is closed (the peer is then gone).
    absl::Duration stall_timeout = absl::Seconds(30);
    // How long a dialer that lost the simultaneous-connect tie-break waits for the winner before redialing.
    absl::Duration tie_break_retry = absl::Seconds(1);
    // At exit, how long a stuck peer may delay the process.
    absl::Duration exit_flush_timeout = absl::Seconds(10);
  };
  enum class Direction { kSend, kRecv };

  // Takes ownership of `listen_fd`, a bound, listening TCP socket whose address
  // and port are `self`'s. Starts the loop thread.
  DataPlane(int listen_fd, const Pid& self, Options options);
  DataPlane(int listen_fd, const Pid& self) : DataPlane(listen_fd, self, Options()) {}
  ~DataPlane() override;
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  const Pid& self() const { return self_; }
  const Options& options() const { return options_; }

  // Registers a Sender (kSend) or Receiver (kRecv) of `type_name` to `remote`
  // and returns that process's Peer, connecting on first use. Aborts for
  // self() or a second live one of the same direction to `remote`.
  std::shared_ptr<Peer> Acquire(const Pid& remote, Direction direction, std::string_view type_name);
  void Release(const Pid& remote, Direction direction);

  // Waits until every queued frame has been written and acknowledged by the
  // peer's kernel (TIOCOUTQ 0), every peer has failed, or `timeout`. Then
  // incoming frames are dropped. For process exit; true if all was flushed.
  bool FlushForExit(absl::Duration timeout);

  // Connections open now (handshake done), and ever opened.
  size_t open_connections() const { return open_.load(); }
  uint64_t connections_opened() const { return opened_.load(); }
  // Waits until exactly `n` connections are open; false at `timeout`.
  bool WaitForOpenConnections(size_t n, absl::Duration timeout);
  // Accepted connections whose dialer has not proved itself yet, and those
  // evicted to keep them within max_unauthenticated, ever.
  size_t unauthenticated_connections() const { return unauthenticated_count_.load(); }
  uint64_t connections_evicted() const { return evicted_.load(); }

 private:
  enum class Closing { kNone, kCloseSent, kAckSent };
  struct Entry {  // guarded by mu_
    std::shared_ptr<Peer> peer;
    int endpoints = 0;
    bool has_sender = false;
    bool has_receiver = false;
  };
  struct LoopPeer {               // loop thread only
    Link* link = nullptr;         // open (or closing) connection
    Link* dialing = nullptr;      // our dial, before its Hello reply
    std::vector<Link*> deferred;  // incoming Hellos waiting for `link` to finish closing
    Closing closing = Closing::kNone;
    std::unique_ptr<Event> idle_timer;
    std::unique_ptr<Event> retry_timer;
    // The peer answered kBusy (its bound on unauthenticated connections):
    // since when, and how often; we dial again, within handshake_timeout.
    absl::Time busy_since = absl::InfiniteFuture();
    int busy_retries = 0;
  };

  // LinkOwner
  void OnConnected(Link* link) override;
  void OnHello(Link* link, const Hello& hello) override;
  void OnControl(Link* link, const FrameHeader& header, std::string_view payload) override;
  void OnWritable(Link* link) override;
  void OnLinkDown(Link* link, absl::Status why) override;

  void OnAcceptable();
  // A new accepted connection: evicts the oldest unauthenticated one beyond the bound.
  void AdmitUnauthenticated(Link* link);
  void ForgetUnauthenticated(Link* link);
  void OnBusy(Link* link);
  void Connect(const Pid& remote);
  void HandleIncoming(Link* link);
  void Activate(Link* link);
  void CloseGracefully(const Pid& remote);
  void FailPeer(const Pid& remote, absl::Status status);
  void CheckIdle(const Pid& remote);
  void OnIdleTimer(const Pid& remote);
  void FlushPeer(const Pid& remote);
  void KillLink(Link* link);
  void Bury(std::unique_ptr<Event> event);
  bool Reply(Link* link, HelloKind kind);
  std::shared_ptr<Peer> FindPeer(const Pid& remote, int* endpoints);
  // The peer's open connection if its id is `conn`, else null.
  Link* OpenLink(const Pid& remote, uint64_t conn);
  // Drops the peer's entries if nothing refers to it any more.
  void MaybeForget(const Pid& remote);
  std::shared_ptr<Peer> NewPeer(const Pid& remote);
  void CheckFlushed();
  void SetOpen(int delta);
  void Shutdown();

  const Pid self_;
  const Options options_;
  const Link::Credentials credentials_;
  UniqueFd listen_fd_;
  std::unique_ptr<EventLoop> loop_;

  std::mutex mu_;
  absl::flat_hash_map<Pid, Entry> peers_;        // guarded by mu_
  absl::flat_hash_map<Pid, absl::Status> dead_;  // guarded by mu_

  // Loop thread only.
  std::unique_ptr<Event> listen_event_;
  absl::flat_hash_map<Link*, std::unique_ptr<Link>> links_;
  absl::flat_hash_map<Pid, LoopPeer> loop_peers_;
  std::vector<std::unique_ptr<Link>> dead_links_;
  std::vector<std::unique_ptr<Event>> dead_events_;
  std::deque<Link*> unauthenticated_;  // accepted, not yet proved, oldest first
  bool sweep_posted_ = false;
  bool exiting_ = false;
  std::unique_ptr<Event> flush_timer_;

  std::atomic<size_t> open_{0};
  std::atomic<uint64_t> opened_{0};
  std::atomic<size_t> unauthenticated_count_{0};
  std::atomic<uint64_t> evicted_{0};
  std::mutex state_mu_;  // for waits on open_ and the exit flush
  std::condition_variable state_cv_;
  bool flushed_ = false;  // guarded by state_mu_
};

// ---- The process-wide instance ----

// Starts this process's data plane: takes ownership of listen_fd, starts the one
// libevent loop thread, registers the atexit flush. Called once, by init(), with
// the deployment's secret (without one, every connection fails, loudly).
void StartDataPlane(int listen_fd, const Pid& self, std::string secret);

// The process-wide DataPlane; aborts with a message if StartDataPlane has not run.
DataPlane& DefaultDataPlane();

}  // namespace constellation::net
