// SendQueue's in-place head frame (Peer::SendParts): whatever part of header
// and payload the socket took, what Gather offers next is exactly the rest,
// and a frame queued behind it follows it.
#include "lib/net/send_queue.h"

#include <gtest/gtest.h>

#include <string>

namespace constellation::net {
namespace {

// What Gather offers, concatenated: the bytes the next writes would send.
std::string Pending(SendQueue& q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q.mu()) {
  iovec iov[16];
  int n = q.Gather(iov, 16);
  std::string out;
  for (int i = 0; i < n; ++i) out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

std::string Header(uint64_t fingerprint, uint64_t length) {
  char bytes[kFrameHeaderSize];
  EncodeFrameHeader(FrameHeader{FrameKind::kData, kChannelForward, fingerprint, length}, bytes);
  return std::string(bytes, kFrameHeaderSize);
}

class InPlaceTest : public ::testing::TestWithParam<size_t> {};

TEST_P(InPlaceTest, TheRestOfAPartlyWrittenFrameIsWhatGoesNext) {
  std::string bytes(70000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + (i >> 9));
  const std::string frame = Header(9, bytes.size()) + bytes;
  const size_t written = GetParam();

  SendQueue q(64, 1 << 20);
  MutexLock lock(&q.mu());
  const char* header = q.PushInPlace(FrameHeader{FrameKind::kData, kChannelForward, 9, bytes.size()});
  EXPECT_EQ(std::string(header, kFrameHeaderSize), frame.substr(0, kFrameHeaderSize));
  EXPECT_FALSE(q.HasRoom() && q.bytes() == 0) << "the frame in flight counts toward the bound";
  std::string behind = "next";  // queued by another thread while the frame was in flight
  q.Push(FrameHeader{FrameKind::kData, kChannelForward, 3, behind.size()}, &behind, false);

  const bool all = q.FinishInPlace(written, bytes, false);
  EXPECT_EQ(all, written == frame.size());
  const std::string rest = frame.substr(written) + Header(3, 4) + "next";
  EXPECT_EQ(Pending(q), rest);
  // A frame being written counts its whole payload until it is done.
  EXPECT_EQ(q.bytes(), all ? 4 : bytes.size() + 4);
  q.Consume(rest.size());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(q.written_on_connection(), frame.size() + kFrameHeaderSize + 4);
}

// The connection breaks with the frame partly written: on the next one
// (DropPartial) it goes again whole, header and all of its payload.
TEST_P(InPlaceTest, AFrameCutByABrokenConnectionGoesAgainWhole) {
  std::string bytes(70000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 13 + (i >> 7));
  const std::string frame = Header(9, bytes.size()) + bytes;
  const size_t written = GetParam();
  if (written == frame.size()) return;  // nothing left to cut

  SendQueue q(64, 1 << 20);
  MutexLock lock(&q.mu());
  q.PushInPlace(FrameHeader{FrameKind::kData, kChannelForward, 9, bytes.size()});
  EXPECT_FALSE(q.FinishInPlace(written, bytes, false));
  q.DropPartial();
  q.StartConnection();
  EXPECT_EQ(Pending(q), frame);
  q.Consume(frame.size());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

// A lent frame (a send that waits): the rest is written straight from the
// caller's memory, and the loan ends when the frame is written whole.
TEST_P(InPlaceTest, TheRestOfALentFrameIsWrittenFromTheCallersMemory) {
  std::string bytes(70000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 11 + (i >> 8));
  const std::string frame = Header(9, bytes.size()) + bytes;
  const size_t written = GetParam();

  SendQueue q(64, 1 << 20);
  MutexLock lock(&q.mu());
  q.PushInPlace(FrameHeader{FrameKind::kData, kChannelForward, 9, bytes.size()});
  const bool all = q.FinishInPlace(written, bytes, true);
  EXPECT_EQ(all, written == frame.size());
  EXPECT_EQ(q.lent(), !all);
  if (all) return;
  iovec iov[4];
  const int n = q.Gather(iov, 4);
  ASSERT_GE(n, 1);
  const char* last = static_cast<const char*>(iov[n - 1].iov_base);
  EXPECT_TRUE(last >= bytes.data() && last < bytes.data() + bytes.size()) << "the payload was copied";
  EXPECT_EQ(Pending(q), frame.substr(written));
  EXPECT_EQ(q.bytes(), bytes.size());
  q.Consume(frame.size() - written - 1);
  EXPECT_TRUE(q.lent()) << "one byte is still to go";
  q.Consume(1);
  EXPECT_FALSE(q.lent());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

// A send that stops waiting takes its memory back: the queue keeps a copy,
// written on from where the socket stopped (or whole after a broken
// connection), whatever the caller then does with its memory.
TEST_P(InPlaceTest, ALentFrameTakenBackIsWrittenFromACopy) {
  std::string bytes(70000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 5 + (i >> 10));
  const std::string frame = Header(9, bytes.size()) + bytes;
  const size_t written = GetParam();
  if (written == frame.size()) return;

  SendQueue q(64, 1 << 20);
  MutexLock lock(&q.mu());
  q.PushInPlace(FrameHeader{FrameKind::kData, kChannelForward, 9, bytes.size()});
  EXPECT_FALSE(q.FinishInPlace(written, bytes, true));
  q.TakeBackLent();
  EXPECT_FALSE(q.lent());
  bytes.assign(bytes.size(), 'z');  // the caller's memory is its own again
  EXPECT_EQ(Pending(q), frame.substr(written));
  q.DropPartial();
  q.StartConnection();
  EXPECT_EQ(Pending(q), frame);
  q.Consume(frame.size());
  EXPECT_TRUE(q.empty());
}

// The peer is gone: the lent frame is dropped with the others, and the loan ends.
TEST(LentFrameTest, FailEndsTheLoan) {
  const std::string bytes(70000, 'l');
  SendQueue q(64, 1 << 20);
  MutexLock lock(&q.mu());
  q.PushInPlace(FrameHeader{FrameKind::kData, kChannelForward, 9, bytes.size()});
  EXPECT_FALSE(q.FinishInPlace(100, bytes, true));
  std::string behind = "next";
  q.Push(FrameHeader{FrameKind::kData, kChannelForward, 3, behind.size()}, &behind, false);
  q.Fail(absl::UnavailableError("gone"));
  EXPECT_FALSE(q.lent());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.lost_bytes(), bytes.size() + 4);
}

INSTANTIATE_TEST_SUITE_P(Written, InPlaceTest,
                         ::testing::Values(0, 1, kFrameHeaderSize - 1, kFrameHeaderSize, kFrameHeaderSize + 1,
                                           kFrameHeaderSize + 5, 40000, kFrameHeaderSize + 70000));

}  // namespace
}  // namespace constellation::net
