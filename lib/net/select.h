#pragma once

// select: waits on several channel operations and performs exactly one that is
// ready (a receive with a value or an error to report, or a send with room or
// an error), then runs that case's callback. Ready cases are tried starting at
// a rotating position, so a busy case cannot starve the others.
//
//   absl::StatusOr<size_t> which = constellation::select({
//       constellation::on_recv(numbers, [&](absl::StatusOr<int> v) { ... }),
//       constellation::on_send(out, std::string("hi"), [&](absl::Status s) { ... }),
//   }, absl::Milliseconds(100));   // the timeout is optional
//
// Returns the index of the case that ran, or kDeadlineExceeded when none became
// ready within the timeout (no callback ran). The channels must outlive the call.
// Threading: as for the channels used.

#include <functional>
#include <initializer_list>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/net/channel.h"

namespace constellation {

namespace net {
class Waiter;
}  // namespace net

// One case of select: an operation that may have to wait. attempt() performs
// it (and runs the case's callback) if it need not wait, and returns whether it
// did; subscribe(w, true) makes w fire whenever attempt() may have become
// possible, subscribe(w, false) undoes that (after it returns, w is not fired).
// Channels' cases (on_recv, on_send) and monitors' (on_down) are made for you.
class SelectCase {
 public:
  using Attempt = std::function<bool()>;
  using Subscribe = std::function<void(net::Waiter*, bool add)>;
  SelectCase(net::Peer* peer, bool is_send, Attempt attempt)
      : peer_(peer), is_send_(is_send), attempt_(std::move(attempt)) {}
  SelectCase(Subscribe subscribe, Attempt attempt) : subscribe_(std::move(subscribe)), attempt_(std::move(attempt)) {}

  bool TryRun() const { return attempt_(); }
  void Watch(net::Waiter* waiter, bool add) const;

 private:
  net::Peer* peer_ = nullptr;  // a channel's case; otherwise subscribe_
  bool is_send_ = false;
  Subscribe subscribe_;
  Attempt attempt_;
};

template <class T, class F>
SelectCase on_recv(Receiver<T>& receiver, F callback) {
  return SelectCase(&net::ChannelAccess::PeerOf(receiver), false, [&receiver, callback]() mutable {
    absl::StatusOr<T> value = receiver.try_recv();
    if (absl::IsDeadlineExceeded(value.status())) return false;
    callback(std::move(value));
    return true;
  });
}

template <class T, class F>
SelectCase on_send(Sender<T>& sender, T value, F callback) {
  return SelectCase(&net::ChannelAccess::PeerOf(sender), true, [&sender, value = std::move(value), callback]() mutable {
    absl::Status status = sender.try_send(value);
    if (absl::IsDeadlineExceeded(status)) return false;
    callback(std::move(status));
    return true;
  });
}

absl::StatusOr<size_t> select(std::initializer_list<SelectCase> cases,
                              std::optional<absl::Duration> timeout = std::nullopt);

}  // namespace constellation
