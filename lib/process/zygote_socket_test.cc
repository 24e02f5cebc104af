#include "lib/process/zygote_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace constellation::process_internal {
namespace {

struct Pair {
  Pair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fd), 0); }
  ~Pair() {
    close(fd[0]);
    close(fd[1]);
  }
  int fd[2] = {-1, -1};
};

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) >= 0; }

TEST(ZygoteSocket, AMessageArrivesWholeWithItsFds) {
  Pair p;
  int devnull[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC), open("/dev/null", O_RDONLY | O_CLOEXEC)};
  ASSERT_TRUE(SendZygoteMessage(p.fd[0], 'L', devnull, 2, "payload"));
  for (int fd : devnull) close(fd);
  ZygoteMessage m;
  ASSERT_TRUE(ReceiveZygoteMessage(p.fd[1], &m));
  EXPECT_EQ(m.tag, 'L');
  EXPECT_EQ(m.payload, "payload");
  EXPECT_FALSE(m.cut);
  ASSERT_EQ(m.nfds, 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(IsOpen(m.fds[i]));
    EXPECT_EQ(fcntl(m.fds[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  }
  int kept[2] = {m.fds[0], m.fds[1]};
  m.CloseFds();
  EXPECT_EQ(m.nfds, 0);
  for (int fd : kept) EXPECT_FALSE(IsOpen(fd));
}

TEST(ZygoteSocket, WhatDoesNotFitIsRefusedOrMarkedNeverHalfTaken) {
  Pair p;
  int fds[3] = {0, 0, 0};
  EXPECT_FALSE(SendZygoteMessage(p.fd[0], 'L', fds, 3, ""));
  EXPECT_FALSE(SendZygoteMessage(p.fd[0], 'S', nullptr, 0, std::string(kMaxZygoteMessagePayload + 1, 'x')));

  // A peer that sends more than a message holds: extra fds are closed, an
  // oversized payload is cut, and either way the message is marked.
  int three[3] = {open("/dev/null", O_RDONLY), open("/dev/null", O_RDONLY), open("/dev/null", O_RDONLY)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(three))] = {};
  char tag = 'L';
  iovec iov{&tag, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(three));
  memcpy(CMSG_DATA(c), three, sizeof(three));
  ASSERT_EQ(sendmsg(p.fd[0], &msg, 0), 1);
  for (int fd : three) close(fd);
  ZygoteMessage m;
  ASSERT_TRUE(ReceiveZygoteMessage(p.fd[1], &m));
  EXPECT_TRUE(m.cut);
  EXPECT_EQ(m.nfds, kMaxZygoteMessageFds);
  m.CloseFds();

  std::string big(kMaxZygoteMessagePayload + 100, 'y');
  ASSERT_EQ(send(p.fd[0], big.data(), big.size(), 0), static_cast<ssize_t>(big.size()));
  ZygoteMessage cut;
  ASSERT_TRUE(ReceiveZygoteMessage(p.fd[1], &cut));
  EXPECT_TRUE(cut.cut);
  EXPECT_EQ(cut.payload.size(), kMaxZygoteMessagePayload);
}

TEST(ZygoteSocket, TheOtherEndClosedIsFalse) {
  Pair p;
  shutdown(p.fd[0], SHUT_WR);
  ZygoteMessage m;
  EXPECT_FALSE(ReceiveZygoteMessage(p.fd[1], &m));
}

}  // namespace
}  // namespace constellation::process_internal
