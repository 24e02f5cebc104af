#include "lib/net/frame_reader.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace constellation::net {
namespace {

// Sets the size of *s to `size` (at least its size now). The new bytes are
// left as they were where the library allows it (C++23's
// resize_and_overwrite: this file is built as C++23 for it, see BUILD.bazel),
// else zero-filled: 7% of a receiving core in a stream of 1 MiB values. Only
// the reader writes them, and the frame's buffer is cut to what it wrote
// before anyone sees it.
#if defined(__cpp_lib_string_resize_and_overwrite)
void GrowUninitialized(std::string* s, size_t size) {
  s->resize_and_overwrite(size, [](char*, size_t n) { return n; });
}
// Growing touches no page, so the size may run to the capacity: one recv then
// takes all that has arrived. (Stepping it 256 KiB at a time cost a stream of
// 1 MiB values 4 recvs a value where raw TCP makes one, on one CPU.)
constexpr size_t kSizeAhead = std::numeric_limits<size_t>::max();
#else
void GrowUninitialized(std::string* s, size_t size) { s->resize(size); }
// Growing zero-fills: a step at a time, so recv writes over lines still in cache.
constexpr size_t kSizeAhead = FrameReader::kFillStep;
#endif

}  // namespace

FrameReader::Parsed FrameReader::Parse(absl::FunctionRef<bool()> admit_data, absl::Status* bad) {
  size_t available = end_ - pos_;
  if (!in_frame_) {
    if (available < kFrameHeaderSize) {
      mid_frame_.store(available > 0, std::memory_order_relaxed);
      return Parsed::kNeedMore;
    }
    FrameHeader header;
    absl::Status status = DecodeFrameHeader(buffer_.get() + pos_, &header);
    if (!status.ok()) {
      *bad = absl::InvalidArgumentError(absl::StrCat("bad frame: ", status.message()));
      return Parsed::kBad;
    }
    if (header.kind == FrameKind::kData && !admit_data()) {
      SettleAhead(header, false);
      mid_frame_.store(false, std::memory_order_relaxed);  // the reader stopped reading: nobody stalls
      return Parsed::kRefused;
    }
    pos_ += kFrameHeaderSize;
    header_ = header;
    filled_ = 0;  // the payload keeps its size and capacity: nothing is allocated on the header's claim
    in_frame_ = true;
    SettleAhead(header, header.kind == FrameKind::kData);
    available = end_ - pos_;
  }
  size_t take = std::min<uint64_t>(available, header_.length - filled_);
  while (take > 0) {
    size_t n = std::min(take, Room());
    std::memcpy(payload_.data() + filled_, buffer_.get() + pos_, n);
    pos_ += n;
    filled_ += n;
    take -= n;
  }
  if (filled_ < header_.length) {
    mid_frame_.store(true, std::memory_order_relaxed);
    return Parsed::kNeedMore;
  }
  // Shrinking writes no byte but the terminator; the stale bytes past the
  // frame are cut off here, so nobody sees them.
  payload_.resize(filled_);
  in_frame_ = false;
  last_length_ = filled_;
  return Parsed::kFrame;
}

void FrameReader::SettleAhead(const FrameHeader& header, bool taken) {
  if (ahead_ == 0) return;
  const size_t kept = taken ? std::min<uint64_t>(ahead_, header.length) : 0;
  // What is not this payload's goes back after the header: it fits, as
  // ReadHeaderAndGuess read no more than the buffer holds.
  std::memcpy(buffer_.get() + end_, payload_.data() + kept, ahead_ - kept);
  end_ += ahead_ - kept;
  filled_ = kept;
  ahead_ = 0;
}

ssize_t FrameReader::ReadHeaderAndGuess(int fd, size_t max, int flags, size_t* asked) {
  // The guess: as big as the last payload, at most what fits back in the buffer.
  const size_t guess = std::min<uint64_t>({last_length_, kBufferSize - kFrameHeaderSize, max - kFrameHeaderSize});
  if (payload_.size() < guess) {
    // Capacity for the whole of the guessed frame (as Room would reserve
    // it), so that the rest of it does not move what was read ahead.
    payload_.reserve(std::min<uint64_t>(last_length_, kReserveMax));
    GrowUninitialized(&payload_, guess);
  }
  iovec iov[2] = {{buffer_.get() + end_, kFrameHeaderSize}, {payload_.data(), guess}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  *asked = kFrameHeaderSize + guess;
  const ssize_t n = recvmsg(fd, &msg, flags);
  if (n > 0) {
    const size_t got = static_cast<size_t>(n);
    end_ += std::min(got, kFrameHeaderSize);
    ahead_ = got > kFrameHeaderSize ? got - kFrameHeaderSize : 0;
  }
  return n;
}

size_t FrameReader::Room() {
  const size_t end = std::min<uint64_t>(payload_.size(), header_.length);
  if (filled_ < end) return end - filled_;
  if (payload_.capacity() < header_.length) {
    // Capacity for the frame. Up to kReserveMax, its whole length at once: a
    // receiver took the last big buffer (channel_value.h), so a stream of big
    // values gets a fresh one each time, and growing it step by step would
    // copy the value once more. Memory still follows bytes: a reservation
    // touches no page, and the fill below runs only a step ahead of them.
    // Above it, kReserveMax first, then geometric growth as bytes arrive (to
    // about twice what has arrived): a claim of 4 GiB reserves 64 MiB of
    // address space and touches no more than a bigger value would.
    size_t capacity = header_.length <= kReserveMax ? header_.length : std::max(2 * filled_, kReserveMax);
    payload_.reserve(std::min<uint64_t>(capacity, header_.length));
  }
  // The size: kSizeAhead of the bytes at most.
  const uint64_t ahead = std::min<uint64_t>(kSizeAhead, header_.length - filled_);
  GrowUninitialized(&payload_, std::min<uint64_t>({payload_.capacity(), filled_ + ahead, header_.length}));
  return payload_.size() - filled_;
}

FrameReader::ReadResult FrameReader::ReadSome(int fd, size_t max, bool wait) {
  ReadResult result;
  const int flags = wait ? 0 : MSG_DONTWAIT;
  while (true) {
    ssize_t n;
    size_t asked;
    if (in_frame_ && pos_ == end_ && header_.length - filled_ >= kDirectRead) {
      asked = std::min(Room(), max);
      n = recv(fd, payload_.data() + filled_, asked, flags);
      if (n > 0) filled_ += n;
    } else {
      if (buffer_ == nullptr) buffer_.reset(new char[kBufferSize]);
      if (pos_ > 0) {
        std::memmove(buffer_.get(), buffer_.get() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
      }
      if (last_length_ >= kDirectRead && !in_frame_ && pos_ == end_ && max > kFrameHeaderSize + kDirectRead) {
        // After a big frame, expect another as big: its header into the
        // buffer and its payload straight into its own, in one syscall, as
        // raw TCP reads a message (rather than most of it into the buffer and
        // copied, or the header alone first).
        n = ReadHeaderAndGuess(fd, max, flags, &asked);
      } else {
        asked = std::min(kBufferSize - end_, max);
        n = recv(fd, buffer_.get() + end_, asked, flags);
        if (n > 0) end_ += n;
      }
    }
    if (n > 0) {
      bytes_read_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      result.what = Read::kData;
      result.bytes = static_cast<size_t>(n);
      result.filled = result.bytes == asked;
      return result;
    }
    if (n == 0) {
      result.what = Read::kEnd;
      result.down = !Idle() ? absl::DataLossError("connection closed in the middle of a frame")
                            : absl::UnavailableError("connection closed");
      return result;
    }
    // A signal during a sleeping recv: retrying would restart the whole
    // SO_RCVTIMEO, so the caller looks at its deadline again first.
    if (errno == EINTR && !wait) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      result.what = Read::kWouldBlock;
      return result;
    }
    result.what = Read::kError;
    result.down = absl::UnavailableError(absl::StrCat("read: ", std::strerror(errno)));
    return result;
  }
}

void FrameReader::Reset() {
  pos_ = 0;
  end_ = 0;
  in_frame_ = false;
  last_length_ = 0;
  ahead_ = 0;
  filled_ = 0;
  payload_.clear();
  bytes_read_.store(0, std::memory_order_relaxed);
  mid_frame_.store(false, std::memory_order_relaxed);
}

bool FrameReader::ReleaseIfIdle() {
  if (!Idle() || (buffer_ == nullptr && payload_.capacity() <= kInline())) return false;
  buffer_.reset();
  pos_ = 0;
  end_ = 0;
  std::string().swap(payload_);
  return true;
}

}  // namespace constellation::net
