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

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lib/core/codec.h"
#include "lib/core/pid.h"
#include "lib/core/type_name.h"
#include "lib/net/data_plane.h"
#include "lib/net/peer.h"

namespace constellation {

namespace net {

// The registration of one channel end with a DataPlane; move-only.
class ChannelEnd {
 public:
  ChannelEnd(DataPlane& plane, const Pid& remote, DataPlane::Direction direction, std::string_view type_name)
      : plane_(&plane), remote_(remote), direction_(direction), peer_(plane.Acquire(remote, direction, type_name)) {}
  ~ChannelEnd() {
    if (peer_ != nullptr) plane_->Release(remote_, direction_);
  }
  ChannelEnd(ChannelEnd&& other) noexcept
      : plane_(other.plane_), remote_(other.remote_), direction_(other.direction_), peer_(std::move(other.peer_)) {}
  ChannelEnd& operator=(ChannelEnd&& other) noexcept {
    if (this != &other) {
      if (peer_ != nullptr) plane_->Release(remote_, direction_);
      plane_ = other.plane_;
      remote_ = other.remote_;
      direction_ = other.direction_;
      peer_ = std::move(other.peer_);
    }
    return *this;
  }

  const Pid& remote() const { return remote_; }
  Peer& peer() const;  // aborts on a moved-from channel

 private:
  DataPlane* plane_;
  Pid remote_;
  DataPlane::Direction direction_;
  std::shared_ptr<Peer> peer_;
};

}  // namespace net

template <class T>
class Sender {
 public:
  // Aborts for pid() itself or when another Sender to `remote` is alive.
  explicit Sender(Pid remote) : Sender(remote, net::DefaultDataPlane()) {}
  Sender(Pid remote, net::DataPlane& plane) : end_(plane, remote, net::DataPlane::Direction::kSend, type_name<T>()) {}
  Sender(Sender&&) noexcept = default;
  Sender& operator=(Sender&&) noexcept = default;

  // Blocks until the value is handed to the data plane (buffered, not a
  // rendezvous): only while the buffer bound toward `remote` is reached.
  absl::Status send(const T& value) { return send_until(value, absl::InfiniteFuture()); }
  // Never blocks: kDeadlineExceeded when the buffer bound is reached.
  absl::Status try_send(const T& value) { return send_until(value, absl::InfinitePast()); }
  absl::Status send_for(const T& value, absl::Duration timeout) { return send_until(value, absl::Now() + timeout); }
  absl::Status send_until(const T& value, absl::Time deadline) {
    buffer_.clear();
    encode(value, &buffer_);
    return end_.peer().Send(type_fingerprint<T>(), type_name<T>(), &opened_, &buffer_, deadline);
  }

  Pid remote() const { return end_.remote(); }
  // Internal (select): the peer this channel talks to.
  net::Peer& net_peer() const { return end_.peer(); }

 private:
  net::ChannelEnd end_;
  std::string buffer_;   // the encoding of the value being sent; reused
  bool opened_ = false;  // the Open frame naming T was queued
};

template <class T>
class Receiver {
 public:
  // Aborts for pid() itself or when another Receiver from `remote` is alive.
  explicit Receiver(Pid remote) : Receiver(remote, net::DefaultDataPlane()) {}
  Receiver(Pid remote, net::DataPlane& plane) : end_(plane, remote, net::DataPlane::Direction::kRecv, type_name<T>()) {}
  Receiver(Receiver&&) noexcept = default;
  Receiver& operator=(Receiver&&) noexcept = default;

  // Blocks until a value arrives; an error, never a hang, once the remote has exited.
  absl::StatusOr<T> recv() { return recv_until(absl::InfiniteFuture()); }
  // Never blocks: kDeadlineExceeded when nothing has arrived.
  absl::StatusOr<T> try_recv() { return recv_until(absl::InfinitePast()); }
  absl::StatusOr<T> recv_for(absl::Duration timeout) { return recv_until(absl::Now() + timeout); }
  absl::StatusOr<T> recv_until(absl::Time deadline) {
    net::Peer& peer = end_.peer();
    absl::Status status = peer.Recv(deadline, &frame_);
    if (!status.ok()) return status;
    if (frame_.fingerprint != type_fingerprint<T>()) {
      return absl::InvalidArgumentError(absl::StrCat("Receiver<", std::string(type_name<T>()), "> from process ",
                                                     remote().to_string(), " got a value sent by a Sender<",
                                                     peer.TypeName(frame_.fingerprint), ">"));
    }
    T value{};
    status = decode_into(frame_.payload, &value);
    if (!status.ok()) return status;
    return value;
  }

  Pid remote() const { return end_.remote(); }
  // Internal (select): the peer this channel talks to.
  net::Peer& net_peer() const { return end_.peer(); }

 private:
  net::ChannelEnd end_;
  net::InFrame frame_;  // the last frame received; its buffer is reused
};

}  // namespace constellation
