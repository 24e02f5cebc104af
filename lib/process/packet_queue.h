#pragma once

// PacketQueue: packets waiting for room in a non-blocking SOCK_SEQPACKET
// socket (lib/process/local_socket.h), sent in the order they were queued.
//
// The bridge, the node agent and every monitor both read and write their
// local sockets from one thread. A blocking or bounded-wait write there can
// deadlock: each end waits for the other to read while neither reads, and a
// bounded wait then drops a packet (a verdict the process waits for). With
// a queue, a writer never waits: what does not fit stays queued, the loop
// polls for POLLOUT, and it stops *reading* (not writing) whatever fills the
// queue once bytes() passes its own bound.
//
// Not thread-safe.

#include <cstddef>
#include <deque>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/local.pb.h"

namespace constellation::internal {

class PacketQueue {
 public:
  // Appends `message`. INTERNAL if it does not fit one packet (kMaxPacket).
  absl::Status Push(const pb::LocalMessage& message);
  // Sends queued packets to `fd` until the queue is empty (true) or the
  // socket is full (false); an error if the socket is broken (its peer
  // closed), and then the queue is cleared: nobody is left to read it.
  absl::StatusOr<bool> Flush(int fd);
  // Push, then Flush if nothing was waiting before (the usual case: the
  // packet leaves at once, in order behind nothing).
  absl::StatusOr<bool> Send(int fd, const pb::LocalMessage& message);

  bool empty() const { return packets_.empty(); }
  size_t bytes() const { return bytes_; }
  void Clear();

 private:
  std::deque<std::string> packets_;
  size_t bytes_ = 0;
};

}  // namespace constellation::internal
