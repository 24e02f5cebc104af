#pragma once

// SpareBuffers: the big payload buffers one direction of a Peer keeps for
// reuse, so a stream of big values reuses the same memory instead of
// allocating, faulting in and freeing a fresh buffer per value.
//
// A stream keeps several big buffers in flight at once: the frame being read
// (or encoded), the ones queued, the one the receiver decodes from. One spare
// was not enough: once the reader ran a frame ahead of the receiver, every
// further frame grew a buffer from nothing (a copy per doubling, page faults)
// and freed another. So the spares are as many buffers as a full queue and
// one more value hold (the owner says how many bytes that is): when a full
// queue drains, its buffers wait here for the next burst. This adds no peak:
// a buffer is either queued or spare. An idle peer gives them all back
// (Release).
//
// Threading: thread-compatible; the owning queue's mutex guards it.

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace constellation::net {

class SpareBuffers {
 public:
  // Buffers of this capacity or less are not worth keeping here: a queue slot
  // keeps its own.
  static constexpr size_t kSmall = 16 << 10;
  // At most this many are kept (Take looks through them all): enough for a
  // queue's bound of 1 MiB values with room to spare.
  static constexpr size_t kMaxBuffers = 16;
  // At most `keep_bytes` of buffers' capacity are kept together.
  explicit SpareBuffers(size_t keep_bytes) : keep_bytes_(keep_bytes) {}

  // Takes a big buffer in (leaving *buffer empty) while the total and the
  // count allow it, else frees it. Small buffers are left where they are.
  void Give(std::string* buffer) {
    const size_t capacity = buffer->capacity();
    if (capacity <= kSmall) return;
    if (bytes_ + capacity <= keep_bytes_ && buffers_.size() < kMaxBuffers) {
      bytes_ += capacity;
      buffers_.push_back(std::move(*buffer));
    }
    std::string().swap(*buffer);  // a moved-from string may keep its buffer
  }

  // Swaps the biggest spare into *buffer if it is bigger than what *buffer
  // holds (the buffer it had is freed: it is small, a queue slot's).
  void Take(std::string* buffer) {
    if (buffers_.empty()) return;
    auto biggest = std::max_element(buffers_.begin(), buffers_.end(), [](const std::string& a, const std::string& b) {
      return a.capacity() < b.capacity();
    });
    if (biggest->capacity() <= buffer->capacity()) return;
    bytes_ -= biggest->capacity();
    buffer->swap(*biggest);
    buffers_.erase(biggest);
  }

  // Frees every spare.
  void Release() {
    std::vector<std::string>().swap(buffers_);
    bytes_ = 0;
  }

  size_t bytes() const { return bytes_; }

 private:
  const size_t keep_bytes_;
  std::vector<std::string> buffers_;
  size_t bytes_ = 0;  // their capacities' sum
};

}  // namespace constellation::net
