// PacketQueue over a real non-blocking socketpair: order kept across a full
// socket, a broken peer reported (and the queue cleared), too-big refused.
#include "lib/process/packet_queue.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/process/local_socket.h"

namespace constellation::internal {
namespace {

pb::LocalMessage Output(const std::string& text) {
  pb::LocalMessage m;
  m.mutable_event()->mutable_output()->set_fd(1);
  m.mutable_event()->mutable_output()->set_data(text);
  return m;
}

class PacketQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair_), 0); }
  void TearDown() override {
    for (int fd : pair_) {
      if (fd >= 0) close(fd);
    }
  }
  int pair_[2] = {-1, -1};
  PacketQueue queue_;
};

TEST_F(PacketQueueTest, WhatDoesNotFitWaitsAndEverythingArrivesInOrder) {
  constexpr int kPackets = 20000;  // far more than a socket buffer holds
  bool ever_full = false;
  for (int i = 0; i < kPackets; ++i) {
    absl::StatusOr<bool> sent = queue_.Send(pair_[0], Output(absl::StrCat(i)));
    ASSERT_TRUE(sent.ok()) << sent.status();
    ever_full |= !*sent;
  }
  EXPECT_TRUE(ever_full);
  EXPECT_FALSE(queue_.empty());
  EXPECT_GT(queue_.bytes(), 0u);
  int next = 0;
  while (next < kPackets) {
    pb::LocalMessage got;
    absl::StatusOr<bool> read = ReceiveLocal(pair_[1], &got, /*dont_wait=*/true);
    if (absl::IsUnavailable(read.status())) {  // drained what was sent: send more
      absl::StatusOr<bool> flushed = queue_.Flush(pair_[0]);
      ASSERT_TRUE(flushed.ok()) << flushed.status();
      continue;
    }
    ASSERT_TRUE(read.ok() && *read) << read.status();
    ASSERT_EQ(got.event().output().data(), absl::StrCat(next)) << "out of order";
    ++next;
  }
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(queue_.bytes(), 0u);
}

TEST_F(PacketQueueTest, ABrokenPeerIsAnErrorAndClearsTheQueue) {
  while (true) {  // fill the socket, then queue one more
    absl::StatusOr<bool> sent = queue_.Send(pair_[0], Output(std::string(1000, 'x')));
    ASSERT_TRUE(sent.ok());
    if (!*sent) break;
  }
  ASSERT_FALSE(queue_.empty());
  close(pair_[1]);
  pair_[1] = -1;
  absl::StatusOr<bool> flushed = queue_.Flush(pair_[0]);
  EXPECT_TRUE(absl::IsUnavailable(flushed.status())) << flushed.status();
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(queue_.bytes(), 0u);
}

TEST_F(PacketQueueTest, AMessageBiggerThanAPacketIsRefused) {
  absl::StatusOr<bool> sent = queue_.Send(pair_[0], Output(std::string(kMaxPacket + 1, 'x')));
  EXPECT_TRUE(absl::IsInternal(sent.status())) << sent.status();
  EXPECT_TRUE(queue_.empty());
}

}  // namespace
}  // namespace constellation::internal
