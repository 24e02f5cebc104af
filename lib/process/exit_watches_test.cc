#include "lib/process/exit_watches.h"

#include <gtest/gtest.h>

namespace constellation {
namespace {

Pid At(uint16_t port) { return Pid::FromIpv4(0x7f000001, port, 1); }

TEST(ExitWatchesTest, EveryWatcherIsToldOnceAndForgotten) {
  ExitWatches watches;
  ASSERT_TRUE(watches.Add(1, At(10)).ok());
  ASSERT_TRUE(watches.Add(2, At(10)).ok());
  ASSERT_TRUE(watches.Add(2, At(10)).ok());  // twice is once
  ASSERT_TRUE(watches.Add(2, At(11)).ok());
  EXPECT_EQ(watches.Take(At(10)), (std::vector<int>{1, 2}));
  EXPECT_TRUE(watches.Take(At(10)).empty());
  EXPECT_EQ(watches.Take(At(11)), (std::vector<int>{2}));
  EXPECT_EQ(watches.size(), 0u);
}

TEST(ExitWatchesTest, AClosedConnectionIsNotTold) {
  ExitWatches watches;
  ASSERT_TRUE(watches.Add(1, At(10)).ok());
  ASSERT_TRUE(watches.Add(2, At(10)).ok());
  watches.Forget(1);
  EXPECT_EQ(watches.Take(At(10)), (std::vector<int>{2}));
  watches.Forget(2);
  EXPECT_EQ(watches.size(), 0u);
}

TEST(ExitWatchesTest, OneConnectionsWatchesAreBounded) {
  ExitWatches watches;
  for (size_t i = 0; i < ExitWatches::kMaxPerConnection; ++i) {
    ASSERT_TRUE(watches.Add(1, Pid::FromIpv4(0x7f000001, static_cast<uint16_t>(i), static_cast<uint32_t>(i))).ok());
  }
  const Pid another = Pid::FromIpv4(0x7f000002, 1, 1);
  EXPECT_TRUE(absl::IsResourceExhausted(watches.Add(1, another)));
  EXPECT_TRUE(watches.Add(2, another).ok());  // another connection has its own bound
}

}  // namespace
}  // namespace constellation
