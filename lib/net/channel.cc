#include "lib/net/channel.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "lib/net/data_plane.h"
#include "lib/net/peer.h"

namespace constellation::net {
namespace {

DataPlane::Direction PlaneDirection(ChannelEnd::Direction direction) {
  return direction == ChannelEnd::Direction::kSend ? DataPlane::Direction::kSend : DataPlane::Direction::kRecv;
}

}  // namespace

ChannelEnd::ChannelEnd(DataPlane& plane, const Pid& remote, Direction direction, std::string_view type_name)
    : plane_(&plane),
      remote_(remote),
      direction_(direction),
      peer_(plane.Acquire(remote, PlaneDirection(direction), type_name)) {}

ChannelEnd::~ChannelEnd() { ReleaseIfHeld(); }

ChannelEnd::ChannelEnd(ChannelEnd&& other) noexcept
    : plane_(other.plane_), remote_(other.remote_), direction_(other.direction_), peer_(std::move(other.peer_)) {}

ChannelEnd& ChannelEnd::operator=(ChannelEnd&& other) noexcept {
  if (this != &other) {
    ReleaseIfHeld();
    plane_ = other.plane_;
    remote_ = other.remote_;
    direction_ = other.direction_;
    peer_ = std::move(other.peer_);
  }
  return *this;
}

void ChannelEnd::ReleaseIfHeld() {
  if (peer_ != nullptr) plane_->Release(remote_, PlaneDirection(direction_));
}

Peer& ChannelEnd::peer() const {
  if (peer_ == nullptr) {
    std::fprintf(stderr, "constellation: use of a moved-from Sender or Receiver\n");
    std::abort();
  }
  return *peer_;
}

absl::Status ChannelEnd::Send(uint64_t fingerprint, std::string_view type_name, bool* opened, std::string* payload,
                              absl::Time deadline) const {
  return peer().Send(fingerprint, type_name, opened, payload, deadline);
}

absl::Status ChannelEnd::SendParts(uint64_t fingerprint, std::string_view type_name, bool* opened,
                                   std::string_view bytes, std::string* scratch, absl::Time deadline) const {
  return peer().SendParts(fingerprint, type_name, opened, bytes, scratch, deadline);
}

std::string ChannelEnd::TypeName(uint64_t fingerprint) const { return peer().TypeName(fingerprint); }

absl::Status ChannelEnd::Recv(absl::Time deadline, uint64_t* fingerprint, std::string* payload,
                              bool read_socket) const {
  return RecvWith([&](InFrame* frame) { return peer().Recv(deadline, frame, read_socket); }, fingerprint, payload);
}

absl::Status ChannelEnd::RecvFor(absl::Duration timeout, uint64_t* fingerprint, std::string* payload) const {
  return RecvWith([&](InFrame* frame) { return peer().RecvFor(timeout, frame); }, fingerprint, payload);
}

absl::Status ChannelEnd::RecvWith(absl::FunctionRef<absl::Status(InFrame*)> recv, uint64_t* fingerprint,
                                  std::string* payload) const {
  InFrame frame;
  frame.payload.swap(*payload);  // the receive swaps it for the frame's buffer: the old one is reused
  absl::Status status = recv(&frame);
  payload->swap(frame.payload);
  *fingerprint = frame.fingerprint;
  return status;
}

void ChannelEnd::Watch(Waiter* waiter, bool add) const {
  Peer& p = peer();
  if (direction_ == Direction::kSend) {
    add ? p.AddSendWaiter(waiter) : p.RemoveSendWaiter(waiter);
  } else {
    add ? p.AddRecvWaiter(waiter) : p.RemoveRecvWaiter(waiter);
  }
}

}  // namespace constellation::net
