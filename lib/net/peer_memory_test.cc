// An idle connection costs little: a Peer's queues grow with a burst and give
// their slots and buffers back once the connection is quiet (the Link's stall
// timer calls Peer::ReleaseIdleMemory), and the read buffer exists only while
// bytes are in flight. A peer that kept what a burst made it take fails here.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "lib/net/channel.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::DataPlane;
using net::Peer;
using net::testing::MakePlane;
using net::testing::TestOptions;

DataPlane::Options QuickTicks() {
  DataPlane::Options options = TestOptions();
  options.stall_timeout = absl::Milliseconds(200);  // the stall timer (and release) ticks every 50 ms
  return options;
}

bool Small(const Peer::Memory& m) {
  return m.send_slots <= 4 && m.recv_slots <= 4 && m.spare_bytes == 0 && m.reader_bytes == 0;
}

// Waits (for the timer) until `peer` holds no more than an idle peer's minimum.
void ExpectReleased(Peer& peer, const char* which) {
  absl::Time give_up = absl::Now() + absl::Seconds(30);
  Peer::Memory m = peer.HeldMemory();
  while (!Small(m) && absl::Now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling what a timer changes
    m = peer.HeldMemory();
  }
  EXPECT_TRUE(Small(m)) << which << ": send slots " << m.send_slots << ", recv slots " << m.recv_slots
                        << ", spare bytes " << m.spare_bytes << ", reader bytes " << m.reader_bytes;
}

TEST(PeerMemoryTest, BurstGrowsTheQueuesAndQuietGivesItBack) {
  std::unique_ptr<DataPlane> a = MakePlane(0xa, QuickTicks());
  std::unique_ptr<DataPlane> b = MakePlane(0xb, QuickTicks());
  Sender<std::string> tx(b->self(), *a);
  Receiver<std::string> rx(a->self(), *b);
  ASSERT_TRUE(b->WaitForOpenConnections(1, absl::Seconds(30)));
  // A burst the receiver does not read yet (within the test bounds, 64
  // frames and 64 KiB): its queue grows well past its first slots. The big
  // values are over what a slot keeps: they are recycled through the spares.
  constexpr int kBurst = 60;
  const std::string big(20 << 10, 'v');
  auto value = [&](int i) { return i % 30 == 1 ? big : std::to_string(i); };
  for (int i = 0; i < kBurst; ++i) ASSERT_TRUE(tx.send(value(i)).ok());
  absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (net::ChannelAccess::PeerOf(rx).HeldMemory().recv_slots < 32 && absl::Now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(net::ChannelAccess::PeerOf(rx).HeldMemory().recv_slots, 32u);
  for (int i = 0; i < kBurst; ++i) {
    absl::StatusOr<std::string> got = rx.recv();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(*got, value(i));
  }
  ExpectReleased(net::ChannelAccess::PeerOf(rx), "receiver");
  ExpectReleased(net::ChannelAccess::PeerOf(tx), "sender");
  // The connection works on after giving its memory back.
  ASSERT_TRUE(tx.send("again").ok());
  absl::StatusOr<std::string> got = rx.recv();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "again");
  EXPECT_EQ(b->connections_opened(), 1u);
}

}  // namespace
}  // namespace constellation
