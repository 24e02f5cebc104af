#include "lib/net/select.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::testing::MakePlane;

TEST(SelectTest, RunsExactlyOneReadyReceive) {
  auto a = MakePlane(0xa), b = MakePlane(0xb), c = MakePlane(0xc);
  Sender<int> from_b(a->self(), *b);
  Sender<std::string> from_c(a->self(), *c);
  Receiver<int> rb(b->self(), *a);
  Receiver<std::string> rc(c->self(), *a);
  ASSERT_TRUE(from_b.send(7).ok());
  ASSERT_TRUE(from_c.send("seven").ok());
  // Both become ready; each select takes exactly one.
  int got_int = 0, got_string = 0;
  for (int round = 0; round < 2; ++round) {
    absl::StatusOr<size_t> which = select({
        on_recv(rb, [&](absl::StatusOr<int> v) { got_int += v.ok() && *v == 7; }),
        on_recv(rc, [&](absl::StatusOr<std::string> v) { got_string += v.ok() && *v == "seven"; }),
    });
    ASSERT_TRUE(which.ok()) << which.status();
    EXPECT_EQ(got_int + got_string, round + 1);
  }
  EXPECT_EQ(got_int, 1);
  EXPECT_EQ(got_string, 1);
}

TEST(SelectTest, TimesOutWithoutRunningAnything) {
  auto a = MakePlane(0xa), b = MakePlane(0xb);
  Receiver<int> rb(b->self(), *a);
  bool ran = false;
  absl::StatusOr<size_t> which =
      select({on_recv(rb, [&](absl::StatusOr<int>) { ran = true; })}, absl::Milliseconds(30));
  EXPECT_TRUE(absl::IsDeadlineExceeded(which.status()));
  EXPECT_FALSE(ran);
}

TEST(SelectTest, WakesUpWhenAValueArrives) {
  auto a = MakePlane(0xa), b = MakePlane(0xb);
  Receiver<int> rb(b->self(), *a);
  Sender<int> tx(a->self(), *b);
  std::thread t([&] { ASSERT_TRUE(tx.send(3).ok()); });
  int got = 0;
  absl::StatusOr<size_t> which = select({on_recv(rb, [&](absl::StatusOr<int> v) { got = *v; })});
  t.join();
  ASSERT_TRUE(which.ok());
  EXPECT_EQ(*which, 0u);
  EXPECT_EQ(got, 3);
}

TEST(SelectTest, SendCaseRunsWhenThereIsRoom) {
  auto a = MakePlane(0xa), b = MakePlane(0xb);
  Sender<int> tx(b->self(), *a);
  Receiver<int> rx(a->self(), *b);
  Receiver<int> never(b->self(), *a);
  bool sent = false;
  absl::StatusOr<size_t> which = select({
      on_recv(never, [&](absl::StatusOr<int>) {}),
      on_send(tx, 11, [&](absl::Status s) { sent = s.ok(); }),
  });
  ASSERT_TRUE(which.ok());
  EXPECT_EQ(*which, 1u);
  EXPECT_TRUE(sent);
  EXPECT_EQ(*rx.recv(), 11);
}

TEST(SelectTest, ExitedPeerIsReadyWithAnError) {
  auto a = MakePlane(0xa);
  auto b = MakePlane(0xb);
  Receiver<int> rb(b->self(), *a);
  ASSERT_TRUE(a->WaitForOpenConnections(1, absl::Seconds(30)));
  b.reset();
  absl::Status got;
  absl::StatusOr<size_t> which = select({on_recv(rb, [&](absl::StatusOr<int> v) { got = v.status(); })});
  ASSERT_TRUE(which.ok());
  EXPECT_TRUE(absl::IsUnavailable(got)) << got;
}

}  // namespace
}  // namespace constellation
