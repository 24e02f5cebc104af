#include "lib/process/packet_queue.h"

#include <errno.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/process/local_socket.h"

namespace constellation::internal {

absl::Status PacketQueue::Push(const pb::LocalMessage& message) {
  std::string bytes = message.SerializeAsString();
  if (bytes.size() > kMaxPacket) return absl::InternalError("local message too large");
  bytes_ += bytes.size();
  packets_.push_back(std::move(bytes));
  return absl::OkStatus();
}

absl::StatusOr<bool> PacketQueue::Flush(int fd) {
  while (!packets_.empty()) {
    const std::string& packet = packets_.front();
    ssize_t n = send(fd, packet.data(), packet.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    // No room, or no kernel memory for the packet now: both pass.
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == ENOMEM)) return false;
    if (n < 0) {
      absl::Status broken = absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
      Clear();
      return broken;
    }
    bytes_ -= packet.size();  // a packet socket sends all of it or nothing
    packets_.pop_front();
  }
  return true;
}

absl::StatusOr<bool> PacketQueue::Send(int fd, const pb::LocalMessage& message) {
  bool was_empty = packets_.empty();
  absl::Status pushed = Push(message);
  if (!pushed.ok()) return pushed;
  if (!was_empty) return false;
  return Flush(fd);
}

void PacketQueue::Clear() {
  packets_.clear();
  bytes_ = 0;
}

}  // namespace constellation::internal
