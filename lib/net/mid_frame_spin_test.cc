// MidFrameSpin's rule, on an injected clock: windows that bring enough bytes
// keep the spin going, the first that does not ends it for good.
#include "lib/net/mid_frame_spin.h"

#include <gtest/gtest.h>

namespace constellation::net {
namespace {

constexpr int64_t kWindow = MidFrameSpin::kWindowNs;
constexpr size_t kEnough = MidFrameSpin::kWindowBytes;

TEST(MidFrameSpinTest, TheFirstLookOpensAWindowThatEndsTheSpinWhenNothingCame) {
  MidFrameSpin spin;
  const int64_t t0 = 1'000'000;
  EXPECT_TRUE(spin.Spin(t0));
  EXPECT_TRUE(spin.Spin(t0 + kWindow / 2));
  EXPECT_TRUE(spin.Spin(t0 + kWindow - 1));
  EXPECT_FALSE(spin.Spin(t0 + kWindow));
}

TEST(MidFrameSpinTest, AWindowThatBroughtEnoughBytesOpensAnother) {
  MidFrameSpin spin;
  int64_t now = 5'000;
  ASSERT_TRUE(spin.Spin(now));
  for (int i = 0; i < 100; ++i) {  // a fast stream: 64 KiB a window, each look later than the last window's end
    spin.Arrived(64 << 10);
    now += kWindow + 1;
    EXPECT_TRUE(spin.Spin(now)) << "window " << i;
  }
  EXPECT_TRUE(spin.Spin(now + kWindow - 1));
  EXPECT_FALSE(spin.Spin(now + kWindow));
}

TEST(MidFrameSpinTest, BytesCountedAcrossReadsOfOneWindow) {
  MidFrameSpin spin;
  ASSERT_TRUE(spin.Spin(0));
  spin.Arrived(kEnough / 2);
  EXPECT_TRUE(spin.Spin(10));  // the window is still open, and not reopened
  spin.Arrived(kEnough / 2);
  EXPECT_TRUE(spin.Spin(kWindow + 5));  // enough in all: a new window from here
  EXPECT_TRUE(spin.Spin(2 * kWindow + 4));
  EXPECT_FALSE(spin.Spin(2 * kWindow + 5));
}

TEST(MidFrameSpinTest, ASlowTrickleEndsTheSpinAfterOneWindow) {
  MidFrameSpin spin;
  ASSERT_TRUE(spin.Spin(0));
  spin.Arrived(kEnough - 1);
  EXPECT_FALSE(spin.Spin(kWindow));
}

TEST(MidFrameSpinTest, OnceEndedItStaysEndedWhateverArrives) {
  MidFrameSpin spin;
  ASSERT_TRUE(spin.Spin(0));
  ASSERT_FALSE(spin.Spin(kWindow));
  spin.Arrived(10 * kEnough);
  EXPECT_FALSE(spin.Spin(kWindow + 1));
  EXPECT_FALSE(spin.Spin(100 * kWindow));
}

}  // namespace
}  // namespace constellation::net
