// A real monitor (RunMonitor, in a forked process) between a child and this
// test, which plays the bridge. The child writes many packets before it reads
// any answer, and the bridge answers each at once: neither side reads while
// it writes, so a monitor that waited on either write would deadlock (and one
// that waited a bounded time would drop verdicts).
#include "lib/process/monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "lib/core/pid.h"
#include "lib/process/local_socket.h"
#include "lib/process/packet_queue.h"

namespace constellation::internal {
namespace {

// Far more packets than the sockets between the three hold.
constexpr uint32_t kPackets = 20000;

pb::LocalMessage WatchOf(uint32_t nonce) {
  pb::LocalMessage m;
  m.mutable_watch()->add_pids()->set_nonce(nonce);
  return m;
}

// The child: every watch first, then every verdict, in order. Exit code 0
// only if all arrived; the alarm ends it if its monitor stops relaying.
[[noreturn]] void FloodThenRead(int control_fd) {
  alarm(60);
  for (uint32_t i = 0; i < kPackets; ++i) {
    if (!SendLocal(control_fd, WatchOf(i)).ok()) _exit(2);
  }
  for (uint32_t i = 0; i < kPackets; ++i) {
    pb::LocalMessage m;
    absl::StatusOr<bool> got = ReceiveLocal(control_fd, &m);
    if (!got.ok() || !*got) _exit(3);
    if (!m.has_gone() || m.gone().pid().nonce() != i) _exit(4);
  }
  printf("all %u verdicts\n", kPackets);
  fflush(stdout);
  _exit(0);
}

struct Seen {
  uint32_t watches = 0;
  std::string output;
  bool exited = false;
  pb::ExitEvent exit;
};

// The bridge's side: answers every watch with a verdict, never waiting on a
// write, until the exit event (or a deadline: a failure guard only).
void ServeAsBridge(int fd, Seen* seen) {
  PacketQueue to_monitor;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!seen->exited && absl::Now() < deadline) {
    pollfd p{fd, static_cast<short>(POLLIN | (to_monitor.empty() ? 0 : POLLOUT)), 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    if (p.revents & POLLOUT) ASSERT_TRUE(to_monitor.Flush(fd).ok());
    while (!seen->exited) {  // the exit event is the monitor's last packet
      pb::LocalMessage m;
      absl::StatusOr<bool> got = ReceiveLocal(fd, &m, /*dont_wait=*/true);
      if (absl::IsUnavailable(got.status())) break;
      ASSERT_TRUE(got.ok() && *got) << got.status();
      if (m.has_watch()) {
        ++seen->watches;
        pb::LocalMessage verdict;
        *verdict.mutable_gone()->mutable_pid() = m.watch().pids(0);
        verdict.mutable_gone()->set_no_process(true);
        ASSERT_TRUE(to_monitor.Send(fd, verdict).ok());
      } else if (m.has_event() && m.event().has_output()) {
        seen->output += m.event().output().data();
      } else if (m.has_event() && m.event().has_exit()) {
        seen->exited = true;
        seen->exit = m.event().exit();
      }
    }
  }
}

TEST(Monitor, PacketsFlowBothWaysWhenNeitherEndReadsWhileItWrites) {
  int control[2], bridge[2], out[2], err[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control), 0);
  // Blocking, as a monitor gets it from ConnectLocal; only this end is not.
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bridge), 0);
  ASSERT_EQ(fcntl(bridge[1], F_SETFL, O_NONBLOCK), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  pid_t monitor = fork();
  ASSERT_GE(monitor, 0);
  if (monitor == 0) {
    pid_t child = fork();
    if (child == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      FloodThenRead(control[1]);
    }
    for (int fd : {control[1], out[1], err[1], bridge[1]}) close(fd);
    RunMonitor({child, out[0], err[0], control[0], bridge[0]}, MonitorLimits{}, Pid::FromIpv4(0x7f000001, 1, 1));
    _exit(0);
  }
  for (int fd : {control[0], control[1], out[0], out[1], err[0], err[1], bridge[0]}) close(fd);
  Seen seen;
  ServeAsBridge(bridge[1], &seen);
  if (!seen.exited) kill(monitor, SIGKILL);  // its child dies with it (the alarm at worst)
  int status = 0;
  ASSERT_EQ(waitpid(monitor, &status, 0), monitor);
  close(bridge[1]);
  ASSERT_TRUE(seen.exited) << "no exit event; " << seen.watches << " watches relayed";
  EXPECT_EQ(seen.watches, kPackets);
  EXPECT_EQ(seen.exit.status_case(), pb::ExitEvent::kCode) << "signal " << seen.exit.signal();
  EXPECT_EQ(seen.exit.code(), 0) << "the child saw a verdict missing or out of order";
  EXPECT_EQ(seen.output, "all 20000 verdicts\n");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace constellation::internal
