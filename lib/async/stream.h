#pragma once

// Streams: a channel of std::optional<T> whose end is std::nullopt, in the
// spirit of Rust's Stream and Sink over Option<T>.
//
//   StreamSender<int> out(peer);                 // in one process
//   for (int i = 0; i < 3; ++i) out.send(i);
//   out.close();                                 // sends std::nullopt
//
//   StreamReceiver<int> in(peer);                // in the other
//   while (true) {
//     absl::StatusOr<std::optional<int>> item = co_await in.async_next();
//     if (!item.ok()) return item.status();      // the sender's process died first
//     if (!item->has_value()) break;             // closed
//     use(**item);
//   }
//   // or: absl::Status s = co_await for_each(in, [](int v) { use(v); });
//
// Both are a Sender/Receiver<std::optional<T>> underneath (one per remote
// pid, as for channels). Threading: as for Sender and Receiver.

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/async/task.h"
#include "lib/core/pid.h"
#include "lib/net/channel.h"

namespace constellation {

template <class T>
class StreamSender {
 public:
  explicit StreamSender(Pid remote) : sender_(remote) {}
  StreamSender(Pid remote, net::DataPlane& plane) : sender_(remote, plane) {}
  absl::Status send(const T& value) { return sender_.send(std::optional<T>(value)); }
  auto async_send(const T& value) { return sender_.async_send(std::optional<T>(value)); }
  // Ends the stream: the receiver's next() gives std::nullopt.
  absl::Status close() { return sender_.send(std::nullopt); }
  auto async_close() { return sender_.async_send(std::nullopt); }
  Sender<std::optional<T>>& sender() { return sender_; }

 private:
  Sender<std::optional<T>> sender_;
};

template <class T>
class StreamReceiver {
 public:
  explicit StreamReceiver(Pid remote) : receiver_(remote) {}
  StreamReceiver(Pid remote, net::DataPlane& plane) : receiver_(remote, plane) {}
  // The next item, std::nullopt once closed (and ever after), or the error.
  absl::StatusOr<std::optional<T>> next() {
    if (closed_) return std::optional<T>();
    return Note(receiver_.recv());
  }
  Task<absl::StatusOr<std::optional<T>>> async_next() {
    if (closed_) co_return std::optional<T>();
    co_return Note(co_await receiver_.async_recv());
  }
  bool closed() const { return closed_; }
  Receiver<std::optional<T>>& receiver() { return receiver_; }

 private:
  absl::StatusOr<std::optional<T>> Note(absl::StatusOr<std::optional<T>> item) {
    if (item.ok() && !item->has_value()) closed_ = true;
    return item;
  }

  Receiver<std::optional<T>> receiver_;
  bool closed_ = false;
};

// Calls fn(item) for each item until the stream is closed (OK) or fails.
template <class T, class F>
Task<absl::Status> for_each(StreamReceiver<T>& stream, F fn) {
  while (true) {
    absl::StatusOr<std::optional<T>> item = co_await stream.async_next();
    if (!item.ok()) co_return item.status();
    if (!item->has_value()) co_return absl::OkStatus();
    fn(std::move(**item));
  }
}

}  // namespace constellation
