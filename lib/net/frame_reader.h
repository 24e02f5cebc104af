#pragma once

// FrameReader: the read side of one connection's byte stream: the read
// buffer, the frame parser, and one read step (a recv, its result classified).
// Peer's two readers (the loop, and a user thread blocked in Recv; see peer.h)
// both drive one FrameReader, so parsing and the errno ladder live here once.
//
// Memory follows bytes, not claims: the read buffer is allocated when the
// first bytes are read and freed by ReleaseIfIdle (the Peer calls it from a
// timer, never per message); a frame's payload buffer is filled as its bytes
// arrive (Room): recv alone touches its pages (where the library must
// zero-fill what it grows, at most kFillStep ahead of the bytes), though its
// capacity may be reserved up to kReserveMax on the header's claim. A
// recycled payload buffer keeps its size (its bytes stale, see
// RecvQueue::Deliver), so a frame that fits in it is not zero-filled first.
//
// Threading: thread-compatible. The Peer's read role makes its holder the only
// user (see peer.h). bytes_read() and mid_frame() may be read by any thread
// (a snapshot, for the stall check).

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "lib/net/frame.h"

namespace constellation::net {

class FrameReader {
 public:
  // Bytes asked of the socket at once: a header and 64 KiB, so that the
  // bytes a guessed payload read ahead (ReadSome) always fit back in. And the
  // payload bytes still missing above which a frame is read straight into
  // its payload.
  static constexpr size_t kBufferSize = (64 << 10) + kFrameHeaderSize;
  static constexpr size_t kDirectRead = 16 << 10;
  // A frame's payload buffer: capacity for at most this much before bytes
  // arrive (Room), and, where growing it zero-fills, its size at most
  // kFillStep ahead of them.
  static constexpr size_t kReserveMax = 64 << 20;
  static constexpr size_t kFillStep = 256 << 10;

  FrameReader() = default;
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  enum class Parsed {
    kNeedMore,  // the buffered bytes end before the next frame does
    kFrame,     // a whole frame: header() and *payload()
    kRefused,   // admit_data() refused the next data frame; its header stays buffered
    kBad,       // a bad header: *bad says why (the stream is unusable)
  };
  // Parses buffered bytes up to the end of the next frame. A data frame's
  // header is taken only if admit_data() is true (the receiver's queue has
  // room); other kinds are always taken.
  Parsed Parse(absl::FunctionRef<bool()> admit_data, absl::Status* bad);
  // The last frame Parse returned (kFrame). The caller may swap the payload
  // out for another buffer, which the reader then reuses (its bytes need not
  // be cleared: the reader overwrites them).
  const FrameHeader& header() const { return header_; }
  std::string* payload() { return &payload_; }

  enum class Read {
    kData,        // bytes arrived (and were buffered, or read into the payload)
    kWouldBlock,  // EAGAIN: nothing to read now
    kEnd,         // EOF: *down says whether it came in the middle of a frame
    kError,       // a socket error: *down names errno
  };
  struct ReadResult {
    Read what = Read::kWouldBlock;
    size_t bytes = 0;     // kData
    bool filled = false;  // kData: recv returned all it was asked for (more may be waiting)
    absl::Status down;    // kEnd, kError
  };
  // One recv(MSG_DONTWAIT) of at most `max` (> 0) bytes into the buffer, or
  // straight into the payload of a big frame. EINTR is retried. With `wait`,
  // the recv blocks until bytes arrive (kWouldBlock when the socket's
  // SO_RCVTIMEO passes or a signal interrupts it).
  ReadResult ReadSome(int fd, size_t max, bool wait = false);

  // A new connection: the parser starts afresh (buffers are kept).
  void Reset();
  // Nothing buffered and not in the middle of a frame.
  bool Idle() const { return !in_frame_ && pos_ == end_; }
  // If Idle(), frees the read buffer and the payload buffer. True if anything was freed.
  bool ReleaseIfIdle();
  // The payload length of the frame being read: 0 between frames and while
  // its header is incomplete.
  uint64_t frame_length() const { return in_frame_ ? header_.length : 0; }
  // For tests: bytes of buffers held.
  size_t HeldBytes() const {
    return (buffer_ != nullptr ? kBufferSize : 0) + (payload_.capacity() > kInline() ? payload_.capacity() : 0);
  }

  // Any thread (a snapshot): bytes read since Reset, and whether the parser
  // waits for the rest of a frame.
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }
  bool mid_frame() const { return mid_frame_.load(std::memory_order_relaxed); }

 private:
  // What an empty std::string holds without allocating.
  static size_t kInline() { return std::string().capacity(); }
  // In a frame that is not complete: the bytes of room after filled_ (at
  // least one), growing the payload if it has none.
  size_t Room();
  // After a big frame, with nothing buffered: one recvmsg of the next header
  // into the buffer and of as many bytes as the last payload had into
  // payload_ (ahead_). Returns recvmsg's result and sets *asked.
  ssize_t ReadHeaderAndGuess(int fd, size_t max, int flags, size_t* asked);
  // The header just parsed is `header`: the bytes read ahead become its
  // payload's first (a data frame taken), the rest go back to the buffer
  // after the header, in stream order.
  void SettleAhead(const FrameHeader& header, bool taken);

  std::unique_ptr<char[]> buffer_;  // bytes read but not yet parsed: [pos_, end_); null until needed
  size_t pos_ = 0;
  size_t end_ = 0;
  bool in_frame_ = false;     // header parsed, payload being read
  uint64_t last_length_ = 0;  // the last frame's payload: kDirectRead or more is a big one
  // Bytes of the stream after the buffered header that ReadSome read ahead
  // into payload_ (the guess that the next frame is as big as the last);
  // Parse settles them with that header.
  size_t ahead_ = 0;
  FrameHeader header_;
  // [0, filled_) read, the rest stale; the size grows as bytes arrive (Room),
  // to the capacity (at most kFillStep ahead of them where growing
  // zero-fills), and is cut to the frame's length when it
  // is complete. Before a header is parsed it may hold [0, ahead_), read
  // ahead of it (ReadHeaderAndGuess), which Parse settles.
  std::string payload_;
  size_t filled_ = 0;
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<bool> mid_frame_{false};
};

}  // namespace constellation::net
