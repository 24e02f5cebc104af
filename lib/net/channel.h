#pragma once

// Sender<T> and Receiver<T>: typed channels to another process of the program
// (see DESIGN.md and docs/channels.md). A process may hold at most one live
// Sender and one live Receiver per remote pid; all of them to one process share
// one TCP connection.
//
// Threading: a Sender or Receiver is thread-compatible (one thread at a time);
// different ones may be used from different threads at once. They use the
// process-wide data plane (started by init()) unless constructed with an
// explicit net::DataPlane, which must then outlive them (tests).
//
// Errors: kUnavailable once the remote process is gone (recv returns it only
// after every value the remote sent has been received); kDeadlineExceeded when
// a try_/deadline variant would have had to wait longer; kInvalidArgument when
// the value received is of another type than T (the message names both) or
// does not decode.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lib/async/channel_waits.h"
#include "lib/core/channel_value.h"
#include "lib/core/codec.h"
#include "lib/core/pid.h"
#include "lib/core/type_name.h"
#include "lib/net/busy_poll.h"  // set_busy_poll: how long a recv spins before sleeping

namespace constellation {

template <class T>
class Sender;
template <class T>
class Receiver;

namespace net {

// The data plane's insides (data_plane.h, peer.h) stay out of this header, so
// a user's translation unit sees none of them: the templates below reach them
// only through ChannelEnd, whose members are defined in channel.cc.
class DataPlane;
class Peer;
class Waiter;
struct InFrame;

// The process-wide DataPlane (data_plane.h); aborts with a message before init().
DataPlane& DefaultDataPlane();

// The registration of one channel end with a DataPlane, and its way to the
// remote process's Peer; move-only. `plane` must outlive it.
class ChannelEnd {
 public:
  enum class Direction { kSend, kRecv };
  // Aborts for the plane's own pid or a second live end of `direction` to `remote`.
  ChannelEnd(DataPlane& plane, const Pid& remote, Direction direction, std::string_view type_name);
  ~ChannelEnd();
  ChannelEnd(ChannelEnd&& other) noexcept;
  ChannelEnd& operator=(ChannelEnd&& other) noexcept;

  const Pid& remote() const { return remote_; }
  Peer& peer() const;  // aborts on a moved-from channel

  // Peer::Send and Peer::TypeName (peer.h); abort on a moved-from channel.
  absl::Status Send(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string* payload,
                    absl::Time deadline) const;
  // Peer::SendParts: a payload in the caller's memory.
  absl::Status SendParts(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string_view bytes,
                         std::string* scratch, absl::Time deadline) const;
  std::string TypeName(uint64_t fingerprint) const;
  // Peer::Recv: the oldest incoming value's type into *fingerprint and its
  // bytes into *payload (swapping buffers, so *payload's old one is reused).
  absl::Status Recv(absl::Time deadline, uint64_t* fingerprint, std::string* payload, bool read_socket = true) const;
  // Recv until `timeout` from now, reading the clock only if it must wait (Peer::RecvFor).
  absl::Status RecvFor(absl::Duration timeout, uint64_t* fingerprint, std::string* payload) const;
  // Registers (add) or unregisters `waiter` to be fired when a Send or Recv
  // (by direction) may go on (Peer::AddSendWaiter, AddRecvWaiter).
  void Watch(Waiter* waiter, bool add) const;
  // The value of a received frame, or why not (another type than T, bad
  // bytes). A big string takes *payload's buffer (channel_value.h).
  template <class T>
  absl::StatusOr<T> Decode(uint64_t fingerprint, std::string* payload) const {
    if (fingerprint != type_fingerprint<T>()) {
      return absl::InvalidArgumentError(absl::StrCat("Receiver<", std::string(type_name<T>()), "> from process ",
                                                     remote_.to_string(), " got a value sent by a Sender<",
                                                     TypeName(fingerprint), ">"));
    }
    return channel_internal::DecodeValue<T>(payload);
  }

 private:
  void ReleaseIfHeld();
  // Recv and RecvFor: `recv` fills a frame that holds *payload's old buffer.
  absl::Status RecvWith(absl::FunctionRef<absl::Status(InFrame*)> recv, uint64_t* fingerprint,
                        std::string* payload) const;

  DataPlane* plane_;
  Pid remote_;
  Direction direction_;
  std::shared_ptr<Peer> peer_;
};

// The Peer behind a channel, for select (select.h) and the data plane's tests;
// users never need it.
struct ChannelAccess {
  template <class T>
  static Peer& PeerOf(const Sender<T>& sender) {
    return sender.end_.peer();
  }
  template <class T>
  static Peer& PeerOf(const Receiver<T>& receiver) {
    return receiver.end_.peer();
  }
};

}  // namespace net

template <class T>
class Sender {
 public:
  // Aborts for pid() itself or when another Sender to `remote` is alive.
  explicit Sender(Pid remote) : Sender(remote, net::DefaultDataPlane()) {}
  Sender(Pid remote, net::DataPlane& plane) : end_(plane, remote, net::ChannelEnd::Direction::kSend, type_name<T>()) {}
  Sender(Sender&&) noexcept = default;
  Sender& operator=(Sender&&) noexcept = default;

  // Blocks until the value is handed to the data plane (buffered, not a
  // rendezvous): only while the buffer bound toward `remote` is reached, or
  // while the connection is taking a big string or vector of numbers from
  // the caller's memory (docs/channels.md: it is copied once that stops).
  absl::Status send(const T& value) { return send_until(value, absl::InfiniteFuture()); }
  // Never blocks: kDeadlineExceeded when the buffer bound is reached.
  absl::Status try_send(const T& value) { return send_until(value, absl::InfinitePast()); }
  absl::Status send_for(const T& value, absl::Duration timeout) { return send_until(value, absl::Now() + timeout); }
  absl::Status send_until(const T& value, absl::Time deadline) {
    if constexpr (channel_internal::kSentInPlace<T>) {
      return end_.SendParts(type_fingerprint<T>(), type_name<T>(), &opened_, channel_internal::InPlaceBytes(value),
                            &buffer_, deadline);
    } else {
      channel_internal::EncodeValue(value, &buffer_);
      return end_.Send(type_fingerprint<T>(), type_name<T>(), &opened_, &buffer_, deadline);
    }
  }

  // Coroutine forms (lib/async, docs/async.md): co_await suspends the
  // coroutine, not the thread. Same results and errors as send/send_for.
  async_internal::SendWait<T, net::ChannelEnd> async_send(const T& value) {
    return async_internal::SendWait<T, net::ChannelEnd>(&end_, &opened_, value, absl::InfiniteFuture());
  }
  async_internal::SendWait<T, net::ChannelEnd> async_send_for(const T& value, absl::Duration timeout) {
    return async_internal::SendWait<T, net::ChannelEnd>(&end_, &opened_, value, absl::Now() + timeout);
  }

  Pid remote() const { return end_.remote(); }

 private:
  friend struct net::ChannelAccess;

  net::ChannelEnd end_;
  std::string buffer_;   // the encoding of the value being sent (unless in place); reused
  bool opened_ = false;  // the Open frame naming T was queued
};

template <class T>
class Receiver {
 public:
  // Aborts for pid() itself or when another Receiver from `remote` is alive.
  explicit Receiver(Pid remote) : Receiver(remote, net::DefaultDataPlane()) {}
  Receiver(Pid remote, net::DataPlane& plane)
      : end_(plane, remote, net::ChannelEnd::Direction::kRecv, type_name<T>()) {}
  Receiver(Receiver&&) noexcept = default;
  Receiver& operator=(Receiver&&) noexcept = default;

  // Blocks until a value arrives; an error, never a hang, once the remote has exited.
  absl::StatusOr<T> recv() { return recv_until(absl::InfiniteFuture()); }
  // Never blocks: kDeadlineExceeded when nothing has arrived.
  absl::StatusOr<T> try_recv() { return recv_until(absl::InfinitePast()); }
  absl::StatusOr<T> recv_for(absl::Duration timeout) {
    absl::Status status = end_.RecvFor(timeout, &fingerprint_, &payload_);  // no clock read if a value is queued
    if (!status.ok()) return status;
    return end_.Decode<T>(fingerprint_, &payload_);
  }
  absl::StatusOr<T> recv_until(absl::Time deadline) {
    absl::Status status = end_.Recv(deadline, &fingerprint_, &payload_);
    if (!status.ok()) return status;
    return end_.Decode<T>(fingerprint_, &payload_);
  }

  // Coroutine forms (lib/async, docs/async.md): co_await suspends the
  // coroutine, not the thread. Same results and errors as recv/recv_for.
  async_internal::RecvWait<T, net::ChannelEnd> async_recv() {
    return async_internal::RecvWait<T, net::ChannelEnd>(&end_, absl::InfiniteFuture());
  }
  async_internal::RecvWait<T, net::ChannelEnd> async_recv_for(absl::Duration timeout) {
    return async_internal::RecvWait<T, net::ChannelEnd>(&end_, absl::Now() + timeout);
  }

  Pid remote() const { return end_.remote(); }

 private:
  friend struct net::ChannelAccess;

  net::ChannelEnd end_;
  uint64_t fingerprint_ = 0;  // the type of the last value received
  std::string payload_;       // its encoding; the buffer is reused
};

}  // namespace constellation
