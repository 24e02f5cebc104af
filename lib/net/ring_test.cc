// Ring: grows by doubling up to its bound with traffic, keeps every element
// at its address meanwhile, and shrinks back to its first slots when empty.
#include "lib/net/ring.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace constellation::net {
namespace {

TEST(RingTest, GrowsByDoublingUpToItsBound) {
  Ring<int> ring(4, 10);
  EXPECT_EQ(ring.capacity(), 4u);
  std::vector<size_t> capacities;
  for (int i = 0; i < 10; ++i) {
    ring.push_back() = i;
    capacities.push_back(ring.capacity());
  }
  EXPECT_EQ(capacities, (std::vector<size_t>{4, 4, 4, 4, 8, 8, 8, 8, 10, 10}));
  EXPECT_TRUE(ring.full());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(ring.front(), i);
    ring.pop_front();
  }
  EXPECT_TRUE(ring.empty());
}

TEST(RingTest, ElementsKeepTheirAddressesWhileItGrowsAroundTheWrap) {
  Ring<std::string> ring(4, 64);
  // Move the head off slot 0 so growth has to reorder a wrapped ring.
  for (int i = 0; i < 3; ++i) ring.push_back() = "x";
  for (int i = 0; i < 3; ++i) ring.pop_front();
  std::vector<std::string*> addresses;
  for (int i = 0; i < 40; ++i) {
    std::string& slot = ring.push_back();
    slot = "value " + std::to_string(i);
    addresses.push_back(&slot);
  }
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(&ring.at(i), addresses[i]) << i;
    EXPECT_EQ(ring.at(i), "value " + std::to_string(i));
  }
}

TEST(RingTest, ShrinksOnlyWhenEmpty) {
  Ring<std::string> ring(4, 64);
  for (int i = 0; i < 20; ++i) ring.push_back() = std::string(1000, 'b');
  EXPECT_EQ(ring.capacity(), 32u);
  for (int i = 0; i < 19; ++i) ring.pop_front();
  EXPECT_FALSE(ring.ShrinkIfEmpty());  // one element left: slots stay
  EXPECT_EQ(ring.capacity(), 32u);
  ring.pop_front();
  EXPECT_TRUE(ring.ShrinkIfEmpty());
  EXPECT_EQ(ring.capacity(), 4u);
  EXPECT_FALSE(ring.ShrinkIfEmpty());
  // It grows again with the next burst, in order.
  for (int i = 0; i < 6; ++i) ring.push_back() = std::to_string(i);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(ring.front(), std::to_string(i));
    ring.pop_front();
  }
}

}  // namespace
}  // namespace constellation::net
