#pragma once

// Link: one TCP connection of the data plane, from connect/accept through the
// Hello exchange to reading frames. It parses bytes and hands them on: data
// frames straight into its Peer's inbound queue, everything else to its owner
// (the DataPlane). Writing frames is the Peer's business (see peer.h).
//
// Ownership and threading: owned by the DataPlane, used only on its loop
// thread. Owns its socket (closed by the destructor). After Kill() the link does
// nothing more; the owner deletes it later (never inside a callback of its own).

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
  // The Hello exchange is done: frames flow to `peer`.
  void Open(std::shared_ptr<Peer> peer);
  // An acceptor whose Hello must wait (the old connection to that peer is closing): stop reading.
  void Defer();
  void PauseRead();
  void ResumeRead();
  void ArmWrite();
  // Stops every event; the owner deletes the link later.
  void Kill();

 private:
  void OnReadable();
  // Parses what is buffered; false when the link was killed or paused.
  bool ConsumeBuffered();
  bool Fail(absl::Status why);

  EventLoop& loop_;
  const int fd_;
  const Role role_;
  Pid remote_;
  LinkOwner* const owner_;
  Stage stage_;
  std::shared_ptr<Peer> peer_;
  Event read_event_;
  Event consume_event_;  // parses frames that arrived with the Hello
  Event write_event_;
  Event timer_;
  bool paused_ = false;

  // Bytes read but not yet parsed: buffer_[pos_, end_).
  std::unique_ptr<char[]> buffer_;
  size_t pos_ = 0;
  size_t end_ = 0;
  // The frame being read.
  bool in_frame_ = false;
  FrameHeader header_;
  std::string payload_;
  size_t filled_ = 0;
};

}  // namespace constellation::net
