// UniqueFd closes what it owns once, and nothing it gave away.
#include "lib/net/unique_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <utility>

namespace constellation::net {
namespace {

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

int NewFd() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(UniqueFdTest, ClosesWhenDestroyed) {
  int fd = NewFd();
  {
    UniqueFd owned(fd);
    EXPECT_EQ(owned.get(), fd);
    EXPECT_TRUE(IsOpen(fd));
  }
  EXPECT_FALSE(IsOpen(fd));
}

TEST(UniqueFdTest, MoveTransfersOwnership) {
  int fd = NewFd();
  UniqueFd a(fd);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(b.get(), fd);
  UniqueFd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), fd);
  EXPECT_TRUE(IsOpen(fd));
  c.reset();
  EXPECT_FALSE(IsOpen(fd));
}

TEST(UniqueFdTest, ReleaseGivesItAway) {
  int fd = NewFd();
  {
    UniqueFd owned(fd);
    EXPECT_EQ(owned.release(), fd);
    EXPECT_FALSE(owned.valid());
  }
  EXPECT_TRUE(IsOpen(fd));
  close(fd);
}

TEST(UniqueFdTest, ResetClosesTheOldOne) {
  int first = NewFd();
  UniqueFd owned(first);
  int second = NewFd();
  owned.reset(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_EQ(owned.get(), second);
}

}  // namespace
}  // namespace constellation::net
