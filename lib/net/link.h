#pragma once

// Link: one TCP connection of the data plane, from connect/accept through the
// Hello exchange to an open connection. Once open, the Peer parses its frames
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
// thread. Owns its socket and epoll set (closed by the destructor). After
// Kill() the link does nothing more; the owner deletes it later (never inside a
// callback of its own).

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/core/pid.h"
#include "lib/net/event_loop.h"
#include "lib/net/frame.h"
#include "lib/net/peer.h"

namespace constellation::net {

class Link;

class LinkOwner {
 public:
  virtual ~LinkOwner() = default;
  virtual void OnConnected(Link* link) = 0;                  // dialer: TCP is up
  virtual void OnHello(Link* link, const Hello& hello) = 0;  // a well-formed Hello arrived
  virtual void OnControl(Link* link, const FrameHeader& header, std::string_view payload) = 0;
  virtual void OnWritable(Link* link) = 0;
  // EOF, a socket error, bad bytes or a handshake timeout. The link is not yet killed.
  virtual void OnLinkDown(Link* link, absl::Status why) = 0;
};

class Link {
 public:
  enum class Role { kDialer, kAcceptor };
  enum class Stage { kConnecting, kHello, kOpen, kDeferred, kDead };

  // Takes ownership of `fd` (non-blocking). `remote` is the Pid dialled (dialer) or null (acceptor).
  Link(EventLoop& loop, int fd, Role role, const Pid& remote, LinkOwner* owner, absl::Duration handshake_timeout);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  int fd() const { return fd_; }
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
  // Writes a Hello (56 bytes on a fresh socket: always fits) and starts reading Hellos.
  absl::Status SendHello(const Hello& hello);
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
  // Before Open: reads Hellos.
  void OnHelloReadable();
  // Open: the Peer reads frames.
  void OnFramesReadable();
  bool Fail(absl::Status why);

  EventLoop& loop_;
  const int fd_;
  const uint64_t id_;
  int ep_ = -1;  // once open: an epoll set holding only fd_, watched by frame_event_
  const Role role_;
  Pid remote_;
  LinkOwner* const owner_;
  Stage stage_;
  std::shared_ptr<Peer> peer_;
  Event read_event_;                    // the socket, before Open
  std::unique_ptr<Event> frame_event_;  // ep_, once open
  std::unique_ptr<Event> lease_timer_;  // once open
  Event write_event_;
  Event timer_;
  bool paused_ = false;

  // A Hello being read (exactly one Hello is read at a time, so no frame
  // behind it is read before the Peer's parser takes over).
  char hello_[kHelloSize];
  size_t hello_filled_ = 0;
};

}  // namespace constellation::net
