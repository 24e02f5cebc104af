// FrameReader: frames split across reads, many frames in one read, bad
// headers, the end of the stream in and between frames, refusal, big frames
// read straight into their payload, and giving memory back when idle. Over a
// non-blocking socketpair, written by hand.
#include "lib/net/frame_reader.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

namespace constellation::net {
namespace {

using Parsed = FrameReader::Parsed;
using Read = FrameReader::Read;

// How far ahead of the bytes read a payload buffer's pages may be touched:
// a few pages for rounding and the allocator's own marks at the ends (ASan's
// touch the last page), and a step where growing the buffer
// zero-fills it (frame_reader.cc is built as C++23 for resize_and_overwrite,
// so that growing touches nothing; this test may not be).
constexpr size_t kTouchedAhead = (16 << 10)
#if !defined(__cpp_lib_string_resize_and_overwrite)
                                 + FrameReader::kFillStep
#endif
    ;

// Bytes of [data, data + size) in resident pages (mincore), whole pages
// counted: what the reader has touched of a buffer the kernel mapped fresh.
size_t ResidentBytes(const char* data, size_t size) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size + page - 1) / page * page;
  std::vector<unsigned char> in_core((end - begin) / page);
  if (mincore(reinterpret_cast<void*>(begin), end - begin, in_core.data()) != 0) return SIZE_MAX;
  size_t resident = 0;
  for (unsigned char c : in_core) resident += (c & 1) ? page : 0;
  return resident;
}

std::string Frame(FrameKind kind, const std::string& payload, uint64_t fingerprint = 7) {
  FrameHeader header;
  header.kind = kind;
  header.fingerprint = fingerprint;
  header.length = payload.size();
  char bytes[kFrameHeaderSize];
  EncodeFrameHeader(header, bytes);
  return std::string(bytes, kFrameHeaderSize) + payload;
}

class FrameReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    in_ = fds[0];
    out_ = fds[1];
  }
  void TearDown() override {
    close(in_);
    if (out_ >= 0) close(out_);
  }
  void Write(const std::string& bytes) {
    ASSERT_EQ(write(out_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void CloseWriter() {
    close(out_);
    out_ = -1;
  }
  Parsed Parse() {
    absl::Status bad;
    Parsed parsed = reader_.Parse([] { return true; }, &bad);
    bad_ = bad;
    return parsed;
  }
  // Writes `frame` in pieces of at most `piece` bytes as the reader drains the
  // socket (its buffers are smaller than a big frame), until a frame is parsed.
  void FeedWhileReading(const std::string& frame, size_t piece) {
    size_t written = 0;
    Parsed parsed = Parsed::kNeedMore;
    while (parsed != Parsed::kFrame) {
      if (written < frame.size()) {
        ssize_t n = write(out_, frame.data() + written, std::min(frame.size() - written, piece));
        if (n > 0) written += n;
      }
      FrameReader::ReadResult r = reader_.ReadSome(in_, SIZE_MAX);
      ASSERT_NE(r.what, Read::kEnd);
      ASSERT_NE(r.what, Read::kError);
      parsed = Parse();
      ASSERT_NE(parsed, Parsed::kBad) << bad_;
    }
    EXPECT_EQ(written, frame.size());
  }
  // Reads once (all there is, for these small writes) and checks it read something.
  void ReadExpectingData() {
    FrameReader::ReadResult r = reader_.ReadSome(in_, SIZE_MAX);
    ASSERT_EQ(r.what, Read::kData) << r.down;
    EXPECT_GT(r.bytes, 0u);
  }

  // Writes and reads one big data frame, so that the reader expects another.
  void ReadBigFrame(const std::string& payload) {
    Write(Frame(FrameKind::kData, payload));
    Parsed parsed = Parsed::kNeedMore;
    while (parsed == Parsed::kNeedMore) {
      ASSERT_EQ(reader_.ReadSome(in_, SIZE_MAX).what, Read::kData);
      parsed = Parse();
    }
    ASSERT_EQ(parsed, Parsed::kFrame);
    ASSERT_TRUE(*reader_.payload() == payload);
  }

  int in_ = -1;
  int out_ = -1;
  FrameReader reader_;
  absl::Status bad_;
};

TEST_F(FrameReaderTest, NothingToReadWouldBlock) {
  EXPECT_EQ(reader_.ReadSome(in_, SIZE_MAX).what, Read::kWouldBlock);
  EXPECT_EQ(Parse(), Parsed::kNeedMore);
}

TEST_F(FrameReaderTest, FrameSplitAcrossReads) {
  const std::string frame = Frame(FrameKind::kData, "hello, world");
  Write(frame.substr(0, 10));  // part of the header
  ReadExpectingData();
  EXPECT_EQ(Parse(), Parsed::kNeedMore);
  EXPECT_TRUE(reader_.mid_frame());
  Write(frame.substr(10, 20));  // the rest of the header and some payload
  ReadExpectingData();
  EXPECT_EQ(Parse(), Parsed::kNeedMore);
  EXPECT_TRUE(reader_.mid_frame());
  EXPECT_FALSE(reader_.Idle());
  Write(frame.substr(30));
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(reader_.header().fingerprint, 7u);
  EXPECT_EQ(*reader_.payload(), "hello, world");
  EXPECT_EQ(Parse(), Parsed::kNeedMore);
  EXPECT_FALSE(reader_.mid_frame());
  EXPECT_EQ(reader_.bytes_read(), frame.size());
}

TEST_F(FrameReaderTest, ManyFramesInOneRead) {
  Write(Frame(FrameKind::kOpen, "int") + Frame(FrameKind::kData, "a") + Frame(FrameKind::kData, "") +
        Frame(FrameKind::kClose, ""));
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(reader_.header().kind, FrameKind::kOpen);
  EXPECT_EQ(*reader_.payload(), "int");
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "a");
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "");
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(reader_.header().kind, FrameKind::kClose);
  EXPECT_EQ(Parse(), Parsed::kNeedMore);
  EXPECT_TRUE(reader_.Idle());
}

TEST_F(FrameReaderTest, BadHeaderIsReported) {
  std::string frame = Frame(FrameKind::kData, "x");
  frame[0] = 99;  // no such kind
  Write(frame);
  ReadExpectingData();
  EXPECT_EQ(Parse(), Parsed::kBad);
  EXPECT_EQ(bad_.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_.message().find("bad frame"), std::string::npos) << bad_;
}

TEST_F(FrameReaderTest, EndOfStreamInTheMiddleOfAFrameIsDataLoss) {
  Write(Frame(FrameKind::kData, "truncated").substr(0, kFrameHeaderSize + 3));
  CloseWriter();
  ReadExpectingData();
  EXPECT_EQ(Parse(), Parsed::kNeedMore);
  FrameReader::ReadResult r = reader_.ReadSome(in_, SIZE_MAX);
  EXPECT_EQ(r.what, Read::kEnd);
  EXPECT_EQ(r.down.code(), absl::StatusCode::kDataLoss) << r.down;
}

TEST_F(FrameReaderTest, EndOfStreamInsideAHeaderIsDataLoss) {
  Write(Frame(FrameKind::kData, "x").substr(0, 5));
  CloseWriter();
  ReadExpectingData();
  FrameReader::ReadResult r = reader_.ReadSome(in_, SIZE_MAX);
  EXPECT_EQ(r.what, Read::kEnd);
  EXPECT_EQ(r.down.code(), absl::StatusCode::kDataLoss) << r.down;
}

TEST_F(FrameReaderTest, EndOfStreamBetweenFramesIsUnavailable) {
  Write(Frame(FrameKind::kData, "whole"));
  CloseWriter();
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  FrameReader::ReadResult r = reader_.ReadSome(in_, SIZE_MAX);
  EXPECT_EQ(r.what, Read::kEnd);
  EXPECT_EQ(r.down.code(), absl::StatusCode::kUnavailable) << r.down;
}

TEST_F(FrameReaderTest, RefusedDataFrameStaysBuffered) {
  Write(Frame(FrameKind::kData, "later"));
  ReadExpectingData();
  absl::Status bad;
  EXPECT_EQ(reader_.Parse([] { return false; }, &bad), Parsed::kRefused);
  EXPECT_FALSE(reader_.mid_frame());  // a refusing reader is not stalled
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "later");
}

TEST_F(FrameReaderTest, BigFrameArrivesWhole) {
  std::string payload(300 << 10, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131);
  ASSERT_NO_FATAL_FAILURE(FeedWhileReading(Frame(FrameKind::kData, payload), SIZE_MAX));
  EXPECT_TRUE(*reader_.payload() == payload);
}

// A recycled payload buffer keeps its old size and bytes (RecvQueue): a
// shorter frame read into it is exactly that frame, and none of the old
// bytes shows, also when the frame arrives in pieces.
TEST_F(FrameReaderTest, ARecycledBufferShowsOnlyTheNewFrame) {
  std::string recycled(200 << 10, 'o');  // a previous, bigger value
  reader_.payload()->swap(recycled);
  const char* memory = reader_.payload()->data();
  const std::string frame = Frame(FrameKind::kData, std::string(40 << 10, 'n'));
  Write(frame.substr(0, 1000));
  ReadExpectingData();
  EXPECT_EQ(Parse(), Parsed::kNeedMore);
  Write(frame.substr(1000));
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), std::string(40 << 10, 'n'));
  EXPECT_EQ(reader_.payload()->data(), memory);  // read into the recycled memory
  // An empty frame into the same buffer.
  Write(Frame(FrameKind::kData, ""));
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "");
}

// A big frame into a fresh buffer (its receiver took the last one): the
// buffer is reserved at the frame's length once, so it never moves (no copy
// per doubling), and its pages are touched as bytes arrive: at most
// kFillStep ahead of them (where growing zero-fills), else none ahead.
TEST_F(FrameReaderTest, AFreshBufferIsReservedOnceAndTouchedAsBytesArrive) {
  std::string payload((1 << 20) + 3, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7);
  const std::string frame = Frame(FrameKind::kData, payload);
  const char* memory = nullptr;
  size_t written = 0, read = 0;
  Parsed parsed = Parsed::kNeedMore;
  while (parsed != Parsed::kFrame) {
    ASSERT_LT(written, frame.size());
    const size_t piece = std::min<size_t>(frame.size() - written, 40 << 10);
    Write(frame.substr(written, piece));
    written += piece;
    while (reader_.ReadSome(in_, SIZE_MAX).what == Read::kData) {
    }
    read = written;  // the socket is drained
    parsed = Parse();
    ASSERT_NE(parsed, Parsed::kBad) << bad_;
    const std::string& buffer = *reader_.payload();
    if (read <= kFrameHeaderSize) continue;
    if (memory == nullptr) memory = buffer.data();
    EXPECT_EQ(buffer.data(), memory) << "the buffer moved after " << read << " bytes";
    EXPECT_GE(buffer.capacity(), payload.size());
    EXPECT_LE(ResidentBytes(buffer.data(), buffer.capacity()), read - kFrameHeaderSize + kTouchedAhead)
        << "after " << read << " bytes";
  }
  EXPECT_TRUE(*reader_.payload() == payload);
  EXPECT_LT(reader_.payload()->capacity(), payload.size() + payload.size() / 8);
}

// A header claiming more than kReserveMax reserves kReserveMax, and touches
// no more of it than the few bytes that came (and a step, where growing
// zero-fills).
TEST_F(FrameReaderTest, AHugeClaimReservesAtMostTheCapAndTouchesWhatCame) {
  FrameHeader header;
  header.length = uint64_t{2} << 30;
  char bytes[kFrameHeaderSize];
  EncodeFrameHeader(header, bytes);
  Write(std::string(bytes, kFrameHeaderSize) + std::string(FrameReader::kDirectRead + 100, 'c'));
  while (reader_.ReadSome(in_, SIZE_MAX).what == Read::kData) {
    EXPECT_EQ(Parse(), Parsed::kNeedMore);
  }
  EXPECT_LE(reader_.payload()->capacity(), FrameReader::kReserveMax + 64);
  EXPECT_LE(ResidentBytes(reader_.payload()->data(), reader_.payload()->capacity()),
            FrameReader::kDirectRead + 100 + kTouchedAhead);
}

// After a big frame the reader expects another as big: one read takes the
// next header into the read buffer and the payload straight into the
// payload buffer (as raw TCP reads a message in one syscall), not the header
// alone first, nor most of the payload through the read buffer.
TEST_F(FrameReaderTest, AfterABigFrameTheNextIsReadWholeInOneRead) {
  const std::string big = std::string(FrameReader::kDirectRead, 'b') + "end";
  ReadBigFrame(big);
  Write(Frame(FrameKind::kData, big) + Frame(FrameKind::kData, "s"));
  FrameReader::ReadResult whole = reader_.ReadSome(in_, SIZE_MAX);
  ASSERT_EQ(whole.what, Read::kData);
  EXPECT_EQ(whole.bytes, kFrameHeaderSize + big.size());  // exactly the frame: the guess was right
  EXPECT_TRUE(whole.filled);                              // more may be waiting: read again
  const char* buffer = reader_.payload()->data();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_TRUE(*reader_.payload() == big);
  EXPECT_EQ(reader_.payload()->data(), buffer);  // read where it lies, not copied there
  // Then the small frame after it (read with a guess, as the last was big),
  // and with a small frame last, everything there is in one read.
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "s");
  Write(Frame(FrameKind::kData, "t") + Frame(FrameKind::kData, "u"));
  FrameReader::ReadResult both = reader_.ReadSome(in_, SIZE_MAX);
  EXPECT_EQ(both.bytes, 2 * (kFrameHeaderSize + 1));
}

// A wrong guess: after a big frame come a control frame, small frames, a
// refused data frame and a bigger one. What was read ahead into the payload
// buffer goes back behind its header, and every frame arrives whole and in
// order.
TEST_F(FrameReaderTest, AWrongGuessLosesNoByte) {
  const std::string big(FrameReader::kDirectRead + 100, 'g');
  ReadBigFrame(big);
  const std::string bigger(3 * FrameReader::kDirectRead, 'h');
  Write(Frame(FrameKind::kOpen, "a type") + Frame(FrameKind::kData, "one") + Frame(FrameKind::kData, "two") +
        Frame(FrameKind::kData, bigger));
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(reader_.header().kind, FrameKind::kOpen);
  EXPECT_EQ(*reader_.payload(), "a type");
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "one");
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "two");
  Parsed parsed = Parse();
  while (parsed == Parsed::kNeedMore) {
    ASSERT_EQ(reader_.ReadSome(in_, SIZE_MAX).what, Read::kData);
    parsed = Parse();
  }
  ASSERT_EQ(parsed, Parsed::kFrame);
  EXPECT_TRUE(*reader_.payload() == bigger);
  // After `bigger` the guess is its size: a smaller data frame is refused,
  // with bytes read ahead behind it; bytes read after the refusal follow
  // them; then all is taken.
  Write(Frame(FrameKind::kData, big) + Frame(FrameKind::kData, "last"));
  ReadExpectingData();
  absl::Status bad;
  EXPECT_EQ(reader_.Parse([] { return false; }, &bad), Parsed::kRefused);
  Write(Frame(FrameKind::kData, "after"));
  ReadExpectingData();
  Parsed again = Parse();
  while (again == Parsed::kNeedMore) {
    ASSERT_EQ(reader_.ReadSome(in_, SIZE_MAX).what, Read::kData);
    again = Parse();
  }
  ASSERT_EQ(again, Parsed::kFrame);
  EXPECT_TRUE(*reader_.payload() == big);
  Parsed last = Parse();
  if (last == Parsed::kNeedMore) {
    ReadExpectingData();
    last = Parse();
  }
  ASSERT_EQ(last, Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "last");
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "after");
  EXPECT_EQ(reader_.ReadSome(in_, SIZE_MAX).what, Read::kWouldBlock);
}

TEST_F(FrameReaderTest, BuffersAreAllocatedWithBytesAndFreedWhenIdle) {
  EXPECT_EQ(reader_.HeldBytes(), 0u);  // nothing before the first byte
  Write(Frame(FrameKind::kData, std::string(100, 'x')) + Frame(FrameKind::kData, "y").substr(0, 4));
  ReadExpectingData();
  EXPECT_GE(reader_.HeldBytes(), FrameReader::kBufferSize);
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(Parse(), Parsed::kNeedMore);
  EXPECT_FALSE(reader_.ReleaseIfIdle());  // in the middle of the next header: kept
  EXPECT_GE(reader_.HeldBytes(), FrameReader::kBufferSize);
  Write(Frame(FrameKind::kData, "y").substr(4));
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "y");
  EXPECT_TRUE(reader_.ReleaseIfIdle());
  EXPECT_EQ(reader_.HeldBytes(), 0u);
  // And it reads on afterwards.
  Write(Frame(FrameKind::kData, "z"));
  ReadExpectingData();
  ASSERT_EQ(Parse(), Parsed::kFrame);
  EXPECT_EQ(*reader_.payload(), "z");
}

}  // namespace
}  // namespace constellation::net
