#include "lib/net/frame.h"

#include <gtest/gtest.h>

namespace constellation::net {
namespace {

TEST(FrameTest, HeaderRoundTripsAndLimits) {
  char bytes[kFrameHeaderSize];
  EncodeFrameHeader(FrameHeader{FrameKind::kData, kChannelForward, 0x1234, 99}, bytes);
  FrameHeader back;
  ASSERT_TRUE(DecodeFrameHeader(bytes, &back).ok());
  EXPECT_EQ(back.fingerprint, 0x1234u);
  EXPECT_EQ(back.length, 99u);

  EncodeFrameHeader(FrameHeader{FrameKind::kData, kChannelForward, 1, uint64_t{10} << 30}, bytes);
  absl::Status status = DecodeFrameHeader(bytes, &back);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("claims"), std::string::npos);

  EncodeFrameHeader(FrameHeader{FrameKind::kOpen, kChannelForward, 1, kMaxTypeName + 1}, bytes);
  EXPECT_FALSE(DecodeFrameHeader(bytes, &back).ok());
  EncodeFrameHeader(FrameHeader{FrameKind::kClose, kChannelForward, 0, 1}, bytes);
  EXPECT_FALSE(DecodeFrameHeader(bytes, &back).ok());
  bytes[0] = 9;
  EXPECT_FALSE(DecodeFrameHeader(bytes, &back).ok());
}

}  // namespace
}  // namespace constellation::net
