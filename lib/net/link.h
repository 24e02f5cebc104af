#pragma once

// Link: one TCP connection of the data plane, from connect/accept through the
// hello (handshake.h: each side proves it holds the deployment's secret) to an
// open connection. The Link runs the proofs itself and tells its owner only
// what a peer that proved itself said (OnHello); a connection that fails them
// is closed before any frame is read. Once open, the Peer parses its frames
// (see peer.h: whoever holds the Peer's read role reads the socket, the loop or
// a thread blocked in Recv); the Link watches the socket for the loop and
// hands control frames and the connection's end to its owner (the DataPlane).
// Writing frames is the Peer's business too.
//
// The loop does not watch the socket itself once the connection is open but an
// epoll set holding only the socket (ep_), so that a user thread holding the
// read role can stop the loop from being woken by the socket (and let it be
// woken again) without reaching into the loop's state.
//
// Ownership and threading: owned by the DataPlane, used only on its loop
// thread. Owns its socket and epoll set (closed when it is destroyed). After
// Kill() the link does nothing more; the owner deletes it later (never inside a
// callback of its own).

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/core/internal_only.h"
#include "lib/core/pid.h"
#include "lib/net/event_loop.h"
#include "lib/net/frame.h"
#include "lib/net/handshake.h"
#include "lib/net/peer.h"
#include "lib/net/unique_fd.h"

namespace constellation::net {

class Link;

class LinkOwner {
 public:
  virtual ~LinkOwner() = default;
  virtual void OnConnected(Link* link) = 0;  // dialer: TCP is up
  // Acceptor: the dialer proved itself (kind kDial, from, to). Dialer: the
  // acceptor's verdict, proved (or kBusy, which proves nothing).
  virtual void OnHello(Link* link, const Hello& hello) = 0;
  virtual void OnControl(Link* link, const FrameHeader& header, std::string_view payload) = 0;
  virtual void OnWritable(Link* link) = 0;
  // EOF, a socket error, bad bytes or a handshake timeout. The link is not yet killed.
  virtual void OnLinkDown(Link* link, absl::Status why) = 0;
};

class Link {
 public:
  enum class Role { kDialer, kAcceptor };
  enum class Stage { kConnecting, kHello, kOpen, kDeferred, kDead };

  // Who this process is in hellos; must outlive the link.
  struct Credentials {
    Pid self;
    std::string secret;  // the deployment's (kSecretSize bytes); anything else fails every hello
  };
  // `fd` is the connection (non-blocking). `remote` is the Pid dialled (dialer) or null (acceptor).
  // The hello must be done within `hello_timeout`; an acceptor whose dialer
  // proved itself then gets `handshake_timeout` more (a deferred hello).
  Link(EventLoop& loop, UniqueFd fd, Role role, const Pid& remote, LinkOwner* owner, const Credentials& credentials,
       absl::Duration hello_timeout, absl::Duration handshake_timeout, absl::Duration stall_timeout);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  int fd() const { return fd_.get(); }
  // False when the link could not get the fd it needs (its epoll set): it is
  // dead from the start; the owner deletes it (this process is out of fds).
  bool usable() const { return ep_.valid(); }
  // Unique among the links of this process; names the connection in posted work.
  uint64_t id() const { return id_; }
  Role role() const { return role_; }
  Stage stage() const { return stage_; }
  const Pid& remote() const { return remote_; }
  const std::shared_ptr<Peer>& peer() const { return peer_; }
  // A short description for log lines.
  std::string Describe() const;

  // Dialer: waits for the non-blocking connect to finish, then OnConnected.
  void WaitConnected();
  // Dialer, once connected: sends kDial with a fresh nonce and reads the challenge.
  absl::Status SendDial();
  // Acceptor, after OnHello: answers the proved dialer with `verdict`
  // (hellos are small and the socket is fresh: a write always fits).
  absl::Status SendVerdict(HelloKind verdict);
  // Acceptor, before the dialer proved itself: sends kBusy (best effort).
  void SendBusy();
  // Acceptor: the dialer has proved itself (it is no longer unauthenticated).
  bool authenticated() const { return authenticated_; }
  void set_remote(const Pid& remote) { remote_ = remote; }
  // The Hello exchange is done: frames flow to `peer`. Fails only when no epoll
  // set can be created (out of fds).
  absl::Status Open(std::shared_ptr<Peer> peer);
  // An acceptor whose Hello must wait (the old connection to that peer is closing): stop reading.
  void Defer();
  void PauseRead();
  // Watches the socket again and reads what is waiting (may call the owner).
  void ResumeRead();
  // (Re)starts the Peer's user-mode lease timer (see Peer::LeaseTick).
  void StartLease();
  void ArmWrite();
  // Stops every event; the owner deletes the link later.
  void Kill();

 private:
  // Before Open: reads hello messages, one at a time and exactly (frames may follow).
  void OnHelloReadable();
  // A whole hello message arrived: checks it and answers. False when the link failed.
  bool OnHelloMessage(const HelloMessage& message);
  absl::Status Write(const HelloMessage& message);
  // Once open, every stall_timeout / 4: fails a connection stuck in the middle of a frame.
  void OnStallTick();
  // Open: the Peer reads frames.
  void OnFramesReadable();
  bool Fail(absl::Status why);

  EventLoop& loop_;
  const UniqueFd fd_;
  const uint64_t id_;
  UniqueFd ep_;  // made at once; once open it holds only fd_, watched by frame_event_
  const Role role_;
  Pid remote_;
  LinkOwner* const owner_;
  Stage stage_;
  std::shared_ptr<Peer> peer_;
  Event read_event_;                    // the socket, before Open
  std::unique_ptr<Event> frame_event_;  // ep_, once open
  std::unique_ptr<Event> lease_timer_;  // once open
  Event write_event_;
  std::unique_ptr<Event> stall_timer_;  // once open
  Event timer_;
  bool paused_ = false;

  // The hello. The next message expected: kDial or kProof (acceptor),
  // kChallenge or a verdict (dialer, which says kAccept for "a verdict").
  const Credentials& credentials_;
  const absl::Duration handshake_timeout_;
  const absl::Duration stall_timeout_;
  HelloKind awaiting_;
  bool authenticated_ = false;
  Nonce dialer_nonce_{};
  Nonce acceptor_nonce_{};
  // A message being read: its prefix first, then the rest (exactly one
  // message is read at a time, so no frame behind it is read before the
  // Peer's parser takes over).
  char hello_[kMaxHelloSize];
  size_t hello_filled_ = 0;
  size_t hello_size_ = kHelloPrefixSize;
  // The stall check: bytes the Peer had read at the last tick, and how many
  // ticks in a row found it mid-frame with nothing new.
  uint64_t stall_bytes_ = 0;
  int stall_ticks_ = 0;
};

}  // namespace constellation::net
