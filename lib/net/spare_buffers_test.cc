#include "lib/net/spare_buffers.h"

#include <string>

#include "gtest/gtest.h"

namespace constellation::net {
namespace {

constexpr size_t kKeep = 4 << 20;

std::string Buffer(size_t capacity) {
  std::string buffer;
  buffer.reserve(capacity);
  return buffer;
}

TEST(SpareBuffersTest, SmallBuffersStayWithTheirSlot) {
  SpareBuffers spares(kKeep);
  std::string small = Buffer(SpareBuffers::kSmall);
  const size_t capacity = small.capacity();
  spares.Give(&small);
  EXPECT_EQ(small.capacity(), capacity);
  EXPECT_EQ(spares.bytes(), 0u);
}

TEST(SpareBuffersTest, KeepsSeveralBigBuffersAndHandsOutTheBiggest) {
  SpareBuffers spares(kKeep);
  std::string a = Buffer(1 << 20);
  std::string b = Buffer(2 << 20);
  const char* b_data = b.data();
  spares.Give(&a);
  spares.Give(&b);
  EXPECT_EQ(a.capacity(), std::string().capacity());  // taken, not copied
  EXPECT_EQ(spares.bytes(), (1u << 20) + (2u << 20));

  std::string reader;
  spares.Take(&reader);
  EXPECT_EQ(reader.data(), b_data);  // the biggest, the same memory
  EXPECT_EQ(spares.bytes(), 1u << 20);
  // A buffer at least as big as every spare takes none.
  spares.Take(&reader);
  EXPECT_EQ(reader.data(), b_data);
  EXPECT_EQ(spares.bytes(), 1u << 20);
}

TEST(SpareBuffersTest, FreesWhatWouldPassTheBound) {
  SpareBuffers spares(kKeep);
  std::string a = Buffer(3 << 20);
  std::string b = Buffer(2 << 20);
  spares.Give(&a);
  spares.Give(&b);  // 5 MiB in all would pass the 4 MiB kept: freed
  EXPECT_EQ(b.capacity(), std::string().capacity());
  EXPECT_EQ(spares.bytes(), 3u << 20);
  std::string too_big = Buffer(kKeep + 1);
  spares.Give(&too_big);
  EXPECT_EQ(spares.bytes(), 3u << 20);
}

TEST(SpareBuffersTest, KeepsAtMostKMaxBuffers) {
  SpareBuffers spares(64 << 20);
  for (size_t i = 0; i < SpareBuffers::kMaxBuffers + 4; ++i) {
    std::string b = Buffer(SpareBuffers::kSmall + 1);
    spares.Give(&b);
  }
  EXPECT_EQ(spares.bytes(), SpareBuffers::kMaxBuffers * (SpareBuffers::kSmall + 1));
}

TEST(SpareBuffersTest, ReleaseFreesEverything) {
  SpareBuffers spares(kKeep);
  std::string a = Buffer(1 << 20);
  spares.Give(&a);
  spares.Release();
  EXPECT_EQ(spares.bytes(), 0u);
  std::string reader;
  spares.Take(&reader);
  EXPECT_EQ(reader.capacity(), std::string().capacity());
}

}  // namespace
}  // namespace constellation::net
