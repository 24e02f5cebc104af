// Process exit: each test forks at its start, before any thread exists; the
// child starts the process-wide data plane as init() would and exits.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "lib/net/channel.h"
#include "lib/net/data_plane.h"
#include "lib/net/test_util.h"

namespace constellation {
namespace {

using net::testing::Listen;
using net::testing::Listener;
using net::testing::TestOptions;

struct Forked {
  pid_t child = -1;
  Listener parent;
  Listener child_listener;
};

// Forks; in the child runs `body(parent_pid)` with the process-wide data plane and exits with `how`.
template <class Body>
Forked Fork(Body body) {
  Forked f;
  f.parent = Listen(0x1000 + getpid());
  f.child_listener = Listen(0x2000 + getpid());
  f.child = fork();
  if (f.child == 0) {
    close(f.parent.fd);
    net::StartDataPlane(f.child_listener.fd, f.child_listener.pid, net::testing::TestSecret());
    body(f.parent.pid);
    std::_Exit(99);  // body must exit itself
  }
  close(f.child_listener.fd);
  return f;
}

int WaitExit(pid_t child) {
  int status = 0;
  waitpid(child, &status, 0);
  return status;
}

TEST(ExitTest, ValuesSentRightBeforeExitAreDelivered) {
  Forked f = Fork([](Pid parent) {
    Sender<std::string> tx(parent);
    for (int i = 0; i < 2000; ++i) (void)tx.send(std::to_string(i) + std::string(2000, 'x'));
    std::exit(0);  // the atexit flush delivers what is still queued
  });
  net::DataPlane plane(f.parent.fd, f.parent.pid, TestOptions());
  Receiver<std::string> rx(f.child_listener.pid, plane);
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<std::string> v = rx.recv();
    ASSERT_TRUE(v.ok()) << i << ": " << v.status();
    ASSERT_EQ(v->substr(0, v->size() - 2000), std::to_string(i));
  }
  absl::StatusOr<std::string> end = rx.recv();
  EXPECT_TRUE(absl::IsUnavailable(end.status())) << end.status();
  int status = WaitExit(f.child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ExitTest, ReturnFromMainStyleExitWithBigValue) {
  Forked f = Fork([](Pid parent) {
    Sender<std::string> tx(parent);
    (void)tx.send(std::string(8 << 20, 'q'));
    std::exit(0);
  });
  net::DataPlane plane(f.parent.fd, f.parent.pid, TestOptions());
  Receiver<std::string> rx(f.child_listener.pid, plane);
  absl::StatusOr<std::string> v = rx.recv();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->size(), size_t{8} << 20);
  EXPECT_TRUE(absl::IsUnavailable(rx.recv().status()));
  WaitExit(f.child);
}

// The flush ends each connection's writing side once all is written, while
// the process (here: the plane) still exists: the peer's kernel acknowledges
// the FIN at once instead of holding the last data's ACK for its delayed-ACK
// timer (a peer with nothing to send back: this raw one sends nothing).
TEST(ExitTest, FlushEndsTheWritingSideOnceAllIsWritten) {
  net::testing::Listener raw = Listen(0x3100);
  std::unique_ptr<net::DataPlane> plane = net::testing::MakePlane(0x3200);
  Sender<std::string> tx(raw.pid, *plane);
  ASSERT_TRUE(tx.send(std::string("the last value")).ok());
  int fd = net::testing::RawAccept(raw.fd, raw.pid, net::testing::TestSecret());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(plane->FlushForExit(absl::Seconds(30)));
  std::string got = net::testing::ReadUntilClosed(fd);  // closes fd
  EXPECT_NE(got.find("the last value"), std::string::npos);
  EXPECT_EQ(got.find(net::testing::kStillOpen), std::string::npos) << "no EOF while the plane exists";
  close(raw.fd);
}

// A process whose exit flush is done takes no connection it has nothing to
// send on: a peer dialing it (to send) is told it is exiting instead of
// having its values taken and dropped. Without verdicts (these planes) its
// sends then fail as to an exited process.
TEST(ExitTest, AnExitingProcessTellsDialersItIsExiting) {
  std::unique_ptr<net::DataPlane> exiting = net::testing::MakePlane(0x3300);
  std::unique_ptr<net::DataPlane> sender = net::testing::MakePlane(0x3400);
  ASSERT_TRUE(exiting->FlushForExit(absl::Seconds(30)));
  Sender<int> tx(exiting->self(), *sender);
  absl::Status status;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((status = tx.send(1)).ok() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("has exited"), std::string::npos) << status;
}

// With verdicts, as in a program, the dialer told so waits for the exiting
// process's verdict, whose status (its exit code) its sends then fail with;
// nothing it sent meanwhile is reported lost on a connection taken and
// ended by the exiting process.
TEST(ExitTest, WithVerdictsADialerToldItIsExitingEndsWithTheVerdict) {
  net::DataPlane::Options options = TestOptions();
  options.watch = [](const Pid&) {};
  std::unique_ptr<net::DataPlane> exiting = net::testing::MakePlane(0x3500, options);
  std::unique_ptr<net::DataPlane> sender = net::testing::MakePlane(0x3600, options);
  ASSERT_TRUE(exiting->FlushForExit(absl::Seconds(30)));
  Sender<int> tx(exiting->self(), *sender);
  // Until the verdict: values queue (nothing takes them), and no send fails.
  for (int i = 0; i < 200; ++i) {
    absl::Status status = tx.try_send(i);
    ASSERT_TRUE(status.ok() || absl::IsDeadlineExceeded(status)) << status;
    absl::SleepFor(absl::Milliseconds(1));
  }
  sender->OnGone(exiting->self(), absl::UnavailableError("process x exited with code 7"), false);
  absl::Status status;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((status = tx.send_for(1, absl::Seconds(1))).ok() || absl::IsDeadlineExceeded(status)) {
    if (absl::Now() > deadline) break;
  }
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("exited with code 7"), std::string::npos) << status;
}

TEST(ExitTest, RecvFromKilledPeerErrors) {
  Forked f = Fork([](Pid parent) {
    Sender<int> tx(parent);
    (void)tx.send(1);
    pause();
    std::exit(0);
  });
  net::DataPlane plane(f.parent.fd, f.parent.pid, TestOptions());
  Receiver<int> rx(f.child_listener.pid, plane);
  absl::StatusOr<int> v = rx.recv();
  ASSERT_TRUE(v.ok()) << v.status();
  kill(f.child, SIGKILL);
  EXPECT_TRUE(absl::IsUnavailable(rx.recv().status()));
  WaitExit(f.child);
}

TEST(ExitTest, SendToExitedPeerErrors) {
  Forked f = Fork([](Pid parent) {
    Receiver<int> rx(parent);
    (void)rx.recv();
    std::exit(0);
  });
  net::DataPlane plane(f.parent.fd, f.parent.pid, TestOptions());
  Sender<int> tx(f.child_listener.pid, plane);
  ASSERT_TRUE(tx.send(1).ok());
  WaitExit(f.child);
  absl::Status s;
  while ((s = tx.send(2)).ok()) {
  }
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
}

}  // namespace
}  // namespace constellation
