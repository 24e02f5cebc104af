#pragma once

// The awaitables of Receiver<T>::async_recv and Sender<T>::async_send
// (channel.h): a receive or send that suspends the coroutine, not the
// thread, until the data plane fires it (a frame, room, the peer's end).
// Results and errors are those of recv() and send(). Each has its own
// buffer, so async and blocking use of one channel from different threads
// both work (each value goes to exactly one receive). The channel end must
// outlive the wait (do not move a Sender or Receiver while it is awaited).
// `End` is net::ChannelEnd (a template parameter only to keep this header
// below channel.h).

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lib/async/wait.h"
#include "lib/core/channel_value.h"
#include "lib/core/type_name.h"

namespace constellation::async_internal {

template <class T, class End>
class RecvWait final : public Wait {
 public:
  RecvWait(const End* end, absl::Time deadline) : Wait(deadline), end_(end) {}
  ~RecvWait() { Cancel(); }
  absl::StatusOr<T> await_resume() { return std::move(*result_); }

 private:
  bool TryComplete() override {
    // The first try (await_ready) takes only what is queued. A receive that
    // must wait then sleeps in the socket's recv (CompleteBlocking) or is
    // woken through the loop (Subscribe), so looking at the socket now would
    // mostly cost a syscall that finds nothing (a ping-pong's reply is not
    // there yet when the coroutine has just sent).
    const bool read_socket = !first_try_;
    first_try_ = false;
    absl::Status status = end_->Recv(absl::InfinitePast(), &fingerprint_, &payload_, read_socket);
    if (absl::IsDeadlineExceeded(status)) return false;
    if (status.ok()) {
      result_.emplace(end_->template Decode<T>(fingerprint_, &payload_));
    } else {
      result_.emplace(std::move(status));
    }
    return true;
  }
  void Subscribe(bool add) override { end_->Watch(this, add); }
  bool Blocks() const override { return true; }
  void CompleteBlocking(absl::Time deadline) override {
    absl::Status status = end_->Recv(deadline, &fingerprint_, &payload_);
    if (status.ok()) {
      result_.emplace(end_->template Decode<T>(fingerprint_, &payload_));
    } else {
      result_.emplace(std::move(status));
    }
  }
  void TimedOut() override {
    result_.emplace(absl::DeadlineExceededError(
        absl::StrCat("recv from ", end_->remote().to_string(), ": nothing arrived in time")));
  }

  const End* end_;
  bool first_try_ = true;
  uint64_t fingerprint_ = 0;
  std::string payload_;
  std::optional<absl::StatusOr<T>> result_;
};

template <class T, class End>
class SendWait final : public Wait {
 public:
  // Encodes `value` at once: it may be a temporary.
  SendWait(const End* end, bool* opened, const T& value, absl::Time deadline)
      : Wait(deadline), end_(end), opened_(opened) {
    channel_internal::EncodeValue(value, &payload_);
  }
  ~SendWait() { Cancel(); }
  absl::Status await_resume() { return std::move(result_); }

 private:
  bool TryComplete() override {
    absl::Status status = end_->Send(type_fingerprint<T>(), type_name<T>(), opened_, &payload_, absl::InfinitePast());
    if (absl::IsDeadlineExceeded(status)) return false;  // payload_ untouched
    result_ = std::move(status);
    return true;
  }
  void Subscribe(bool add) override { end_->Watch(this, add); }
  bool Blocks() const override { return true; }
  void CompleteBlocking(absl::Time deadline) override {
    result_ = end_->Send(type_fingerprint<T>(), type_name<T>(), opened_, &payload_, deadline);
  }
  void TimedOut() override {
    result_ = absl::DeadlineExceededError(absl::StrCat("send to ", end_->remote().to_string(),
                                                       ": the buffer bound is reached (the receiver is not reading)"));
  }

  const End* end_;
  bool* opened_;  // the Sender's: read and written under the Peer's send lock
  std::string payload_;
  absl::Status result_;
};

}  // namespace constellation::async_internal
