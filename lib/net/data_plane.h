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
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lib/core/internal_only.h"
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

    // Where this process learns that its peers are gone (the runtime's link to
    // its monitor, which asks the bridge or node agent): called on the loop
    // thread once per remote pid, the first time this data plane has a channel
    // or a connection with it; the answer comes back through OnGone. With it,
    // only OnGone declares a peer gone (and facts no live process could cause:
    // its port answered as another process): a dial that fails, a slow
    // handshake, a connection that breaks or stalls only make the data plane
    // dial again, backing off from redial_min to redial_max, for as long as
    // the peer is alive. Without it (tests of the data plane alone) a
    // connection's failure is taken as the peer's end, as a connection alone
    // cannot tell a slow peer from a dead one.
    std::function<void(const Pid&)> watch;
    absl::Duration redial_min = absl::Milliseconds(5);
    absl::Duration redial_max = absl::Seconds(1);
    // After OnGone for a peer whose connection is open, how long its last
    // bytes may take to arrive: the connection's end (its process closed it by
    // exiting) normally comes first, and then the peer fails at once.
    absl::Duration gone_drain = absl::Seconds(2);
    // TCP keepalive on every connection: an idle connection to a host that
    // vanished fails after idle + interval * count; one with data unacknowledged
    // after user_timeout (TCP_USER_TIMEOUT). A failed connection is redialed
    // (see watch), so this bounds how long a channel can wait on a vanished
    // host when nobody can tell it is gone.
    absl::Duration keepalive_idle = absl::Seconds(10);
    absl::Duration keepalive_interval = absl::Seconds(5);
    int keepalive_count = 3;
    absl::Duration user_timeout = absl::Seconds(30);
    // While accept() fails for want of fds, the listener rests this long
    // between tries (the dialers' connections wait in the backlog).
    absl::Duration accept_backoff = absl::Milliseconds(100);
  };
  // What an exit flush could not deliver to one peer.
  struct Undelivered {
    Pid peer;
    uint64_t bytes = 0;
    std::string why;  // "not read in time", or the peer's end
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

  // Waits until every queued frame has been written, each open connection's
  // writing side ended (the peer reads EOF after the last frame) and all of it
  // acknowledged by the peer's kernel (TIOCOUTQ 0), every peer has failed, or
  // `timeout`. Incoming frames are dropped from the start. For process exit
  // only; true if all was flushed.
  bool FlushForExit(absl::Duration timeout);
  // After FlushForExit (which returned `flushed`): per peer, the channel
  // data that did not reach it (still queued or unacknowledged, unless the
  // flush completed; or dropped when it was declared gone and never reported
  // to a send or recv). Empty when all was delivered.
  std::vector<Undelivered> UndeliveredAtExit(bool flushed);

  // The system's verdict that `remote` is gone (`why`: UNAVAILABLE with the
  // reason). Any thread. Channels to it end with `why` once what it sent has
  // been received (its connection's end, at most gone_drain later); a
  // node_lost verdict ends them at once (nothing more can come from a lost
  // node).
  void OnGone(const Pid& remote, absl::Status why, bool node_lost);

  // Calls `on_readable` on the loop thread whenever `fd` (not owned; open
  // for the data plane's life) is readable: the runtime reads its monitor
  // connection here, so no thread of its own waits on it.
  void WatchReadable(int fd, std::function<void()> on_readable);

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
    absl::Duration redial_delay;  // the next redial's backoff (zero: redial_min)
    bool watched = false;         // options_.watch was called for it
    // OnGone came while the connection was open: fail at its end or at gone_timer.
    std::unique_ptr<Event> gone_timer;
    // A connection broke with data unacknowledged: reported when the redial opens.
    absl::Status pending_loss;
  };

  // LinkOwner
  void OnConnected(Link* link) override;
  void OnHello(Link* link, const Hello& hello) override;
  void OnControl(Link* link, const FrameHeader& header, std::string_view payload) override;
  void OnWritable(Link* link) override;
  void OnLinkDown(Link* link, absl::Status why) override;

  void OnAcceptable();
  // accept() ran out of fds: rest the listener for accept_backoff.
  void RestListener(int error);
  // Verdict mode (options_.watch set): only OnGone and facts declare a peer gone.
  bool verdicts() const { return static_cast<bool>(options_.watch); }
  // A stalled connection is a paused peer, not a dead one, once verdicts decide.
  absl::Duration StallTimeout() const { return verdicts() ? absl::InfiniteDuration() : options_.stall_timeout; }
  void Watch(const Pid& remote);
  // Verdict mode: dial `remote` again after a backoff (if anything still uses it).
  void ScheduleRedial(const Pid& remote);
  // Verdict mode: the open connection to `remote` failed, `remote` is not known gone.
  void BreakConnection(Link* link, const absl::Status& why);
  // A dial failed before its connection opened: redial (verdict mode) or fail the peer.
  void DialFailed(const Pid& remote, absl::Status why);
  void ApplyGone(const Pid& remote, const absl::Status& why, bool node_lost);
  // Out of fds or memory for `remote`'s connection: its next operation says so; we redial.
  void ReportExhausted(const Pid& remote, absl::string_view what, int error);
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
  std::unique_ptr<Event> accept_timer_;
  std::vector<std::unique_ptr<Event>> watched_fds_;
  bool accept_warned_ = false;  // said once per process: the condition tends to last

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
// `watch` (see Options::watch) connects it to the system's exit verdicts;
// `on_undelivered` is told, at exit, what the exit flush could not deliver
// (after the data plane printed it), so the runtime can make the exit a failure.
void StartDataPlane(int listen_fd, const Pid& self, std::string secret, std::function<void(const Pid&)> watch = nullptr,
                    std::function<void(const std::vector<DataPlane::Undelivered>&)> on_undelivered = nullptr);

// The process-wide DataPlane; aborts with a message if StartDataPlane has not run.
DataPlane& DefaultDataPlane();

}  // namespace constellation::net
