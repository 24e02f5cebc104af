#include "lib/core/channel_value.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace constellation::channel_internal {
namespace {

static_assert(kSentInPlace<std::string>);
static_assert(kSentInPlace<std::vector<double>>);
static_assert(kSentInPlace<std::vector<uint8_t>>);
static_assert(!kSentInPlace<std::vector<bool>>);
static_assert(!kSentInPlace<std::vector<std::string>>);
static_assert(!kSentInPlace<int>);

// A string or a vector of numbers is its bytes alone; anything else its encoding.
TEST(ChannelValueTest, InPlaceTypesAreTheirBytesAlone) {
  std::string out = "stale";
  EncodeValue(std::string("hello"), &out);
  EXPECT_EQ(out, "hello");
  EncodeValue(std::vector<int32_t>{1, -1}, &out);
  EXPECT_EQ(out, std::string("\x01\x00\x00\x00\xff\xff\xff\xff", 8));
  EncodeValue(std::vector<int32_t>{}, &out);
  EXPECT_EQ(out, "");
  EncodeValue(std::map<int, int>{{1, 2}}, &out);
  EXPECT_EQ(out, encode(std::map<int, int>{{1, 2}}));
}

TEST(ChannelValueTest, ABigStringTakesThePayloadsBuffer) {
  std::string payload(kTakenMin, 'x');
  const char* buffer = payload.data();
  absl::StatusOr<std::string> value = DecodeValue<std::string>(&payload);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->data(), buffer);
  EXPECT_EQ(value->size(), kTakenMin);
  EXPECT_TRUE(payload.empty());
}

// A string in a recycled buffer of a much bigger value is copied: the
// program would otherwise hold the whole buffer for a small string.
TEST(ChannelValueTest, AStringInAMuchBiggerBufferIsCopied) {
  std::string payload;
  payload.reserve(4 * kTakenMin);
  payload.assign(kTakenMin, 'w');
  const char* buffer = payload.data();
  absl::StatusOr<std::string> value = DecodeValue<std::string>(&payload);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, std::string(kTakenMin, 'w'));
  EXPECT_NE(value->data(), buffer);
  EXPECT_EQ(payload.data(), buffer);  // kept for the next frame
}

TEST(ChannelValueTest, ASmallStringIsCopiedAndThePayloadKept) {
  std::string payload(kTakenMin - 1, 'y');
  const char* buffer = payload.data();
  absl::StatusOr<std::string> value = DecodeValue<std::string>(&payload);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, payload);
  EXPECT_EQ(payload.data(), buffer);  // the receiver's buffer, for the next frame
}

TEST(ChannelValueTest, VectorsOfNumbersRoundTripAndPartialElementsAreRefused) {
  std::string payload;
  EncodeValue(std::vector<double>{0.5, -2.0, 1e300}, &payload);
  absl::StatusOr<std::vector<double>> value = DecodeValue<std::vector<double>>(&payload);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, (std::vector<double>{0.5, -2.0, 1e300}));
  payload.resize(payload.size() - 1);  // as a hostile sender might frame it
  value = DecodeValue<std::vector<double>>(&payload);
  ASSERT_TRUE(absl::IsInvalidArgument(value.status())) << value.status();
  EXPECT_NE(value.status().message().find("23 bytes are not a whole number of 8-byte elements"), std::string::npos)
      << value.status();
}

TEST(ChannelValueTest, OtherTypesDecodeTheirEncoding) {
  std::string payload;
  EncodeValue(std::map<std::string, int>{{"a", 1}}, &payload);
  absl::StatusOr<std::map<std::string, int>> value = DecodeValue<std::map<std::string, int>>(&payload);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->at("a"), 1);
  payload.push_back('\0');
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeValue<std::map<std::string, int>>(&payload).status()));
}

}  // namespace
}  // namespace constellation::channel_internal
