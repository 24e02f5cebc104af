// NodeAgent's socket admits only the processes the daemon launched (issue 11,
// item 3): a connection from anyone else is closed at once, a hello that
// names another process is refused, and a flood of 1,100 connections costs
// the daemon no fds while a launched process still gets through.
//
// The "launched processes" here are forked children that connect like a
// monitor does. After fork the children only make system calls (the packets
// they send are serialized before the fork).
#include "daemon/node_agent.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::ToProto;

namespace {

constexpr int kFlood = 1100;

size_t OpenFds() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

sockaddr_un AddressOf(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// After fork: system calls only. -1 on failure.
int RawConnect(const sockaddr_un& addr) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval guard{30, 0};  // a failure guard only: the agent answers at once
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  return fd;
}

// Whether the agent closed `fd`, rather than the guard expiring.
bool ClosedByAgent(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);  // reset: it was closed with our hello unread
}

// A forked child standing for a launched process's monitor: it waits until
// Go() hands it its packets (its hello carries its own OS pid, known only
// after the fork), then connects, sends them, and stays until killed.
class FakeMonitor {
 public:
  explicit FakeMonitor(const std::string& socket) {
    int go[2];
    EXPECT_EQ(pipe(go), 0);
    sockaddr_un addr = AddressOf(socket);
    pid_ = fork();
    if (pid_ == 0) {
      // Keep only the pipe: a copy of the agent's end of some connection
      // (this test process holds the agent) would keep it open after the
      // agent closes it, as a real monitor, which execs, never does.
      if (dup2(go[0], 3) != 3) _exit(4);
      close_range(4, ~0U, 0);
      char buf[65536];
      size_t n = 0;
      ssize_t got;
      while ((got = read(3, buf + n, sizeof(buf) - n)) > 0) n += got;
      int fd = RawConnect(addr);
      if (fd < 0) _exit(2);
      for (size_t at = 0; at + 2 <= n;) {  // packets, each after its 2-byte length
        size_t len = static_cast<unsigned char>(buf[at]) | static_cast<size_t>(static_cast<unsigned char>(buf[at + 1]))
                                                               << 8;
        if (send(fd, buf + at + 2, len, MSG_NOSIGNAL) != static_cast<ssize_t>(len)) _exit(3);
        at += 2 + len;
      }
      pause();
      _exit(0);
    }
    close(go[0]);
    go_ = go[1];
  }
  ~FakeMonitor() {
    if (go_ >= 0) close(go_);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t os_pid() const { return pid_; }
  void Go(const std::vector<std::string>& packets) {
    std::string wire;
    for (const std::string& p : packets) {
      wire.push_back(static_cast<char>(p.size() & 0xff));
      wire.push_back(static_cast<char>(p.size() >> 8));
      wire += p;
    }
    EXPECT_EQ(write(go_, wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
    close(go_);
    go_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
};

Pid MakePid(uint16_t port) {
  Pid::Address addr{};
  addr[10] = addr[11] = 0xff;
  addr[12] = 127;
  addr[15] = 1;
  return Pid(addr, port, 1234);
}

std::string Hello(const Pid& pid, pid_t monitor) {
  pb::LocalMessage m;
  *m.mutable_hello()->mutable_pid() = ToProto(pid);
  m.mutable_hello()->set_monitor_os_pid(monitor);
  return m.SerializeAsString();
}

std::string Watch(const std::vector<Pid>& pids) {
  pb::LocalMessage m;
  for (const Pid& pid : pids) *m.mutable_watch()->add_pids() = ToProto(pid);
  return m.SerializeAsString();
}

std::string Output(const Pid& pid, const std::string& text) {
  pb::LocalMessage m;
  *m.mutable_event()->mutable_pid() = ToProto(pid);
  m.mutable_event()->mutable_output()->set_fd(1);
  m.mutable_event()->mutable_output()->set_data(text);
  return m.SerializeAsString();
}

class NodeAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<NodeAgent>> agent =
        NodeAgent::Start({[this](uint64_t, const pb::ProcessEvent& event) {
                            std::lock_guard<std::mutex> lock(mu_);
                            events_.push_back(event);
                            cv_.notify_all();
                          },
                          [](uint64_t, const pb::SpawnRequest&, NodeAgent::Reply) {},
                          [this](uint64_t deployment, const std::vector<Pid>& pids) {
                            std::lock_guard<std::mutex> lock(mu_);
                            for (const Pid& pid : pids) asked_.emplace_back(deployment, pid);
                            cv_.notify_all();
                          }});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }

  // Waits (30 s failure guard) for an output event of `text`.
  bool SawOutput(const std::string& text) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] {
      for (const pb::ProcessEvent& e : events_) {
        if (e.has_output() && e.output().data() == text) return true;
      }
      return false;
    });
  }

  // Waits (30 s failure guard) for `pid`'s exit event.
  std::optional<pb::ExitEvent> ExitOf(const Pid& pid) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<pb::ExitEvent> exit;
    cv_.wait_for(lock, std::chrono::seconds(30), [&] {
      for (const pb::ProcessEvent& e : events_) {
        if (e.has_exit() && e.pid().port() == pid.port()) exit = e.exit();
      }
      return exit.has_value();
    });
    return exit;
  }

  // Waits (30 s failure guard) until the master has been asked `n` times in all.
  bool Asked(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return asked_.size() >= n; });
  }

  void Flood(bool launch_in_flight);

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<pb::ProcessEvent> events_;
  std::vector<std::pair<uint64_t, Pid>> asked_;  // what on_watch asked the master
  std::unique_ptr<NodeAgent> agent_;             // last: its thread calls into the members above
};

TEST_F(NodeAgentTest, SocketIsAFileInAPrivateDirectoryRemovedAtTheEnd) {
  std::string path = agent_->socket_name();
  ASSERT_EQ(path[0], '/') << path;
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  std::string dir = path.substr(0, path.rfind('/'));
  ASSERT_EQ(lstat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, geteuid());
  agent_.reset();
  EXPECT_NE(lstat(path.c_str(), &st), 0);
  EXPECT_NE(lstat(dir.c_str(), &st), 0);
}

TEST_F(NodeAgentTest, AConnectionFromAProcessItDidNotLaunchIsClosedAtOnce) {
  int fd = RawConnect(AddressOf(agent_->socket_name()));
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ClosedByAgent(fd));
  close(fd);
}

TEST_F(NodeAgentTest, ALaunchedProcessIsHeard) {
  Pid pid = MakePid(1000);
  agent_->Register(pid, 7);
  FakeMonitor monitor(agent_->socket_name());
  agent_->Started(pid, monitor.os_pid());
  monitor.Go({Hello(pid, monitor.os_pid()), Output(pid, "hi")});
  EXPECT_TRUE(SawOutput("hi"));
}

// Impersonation: a hello naming a launched process, from another process.
TEST_F(NodeAgentTest, AHelloNamingAnotherProcessIsRefused) {
  Pid pid = MakePid(1001);
  agent_->Register(pid, 7);
  FakeMonitor monitor(agent_->socket_name());
  agent_->Started(pid, monitor.os_pid());
  int fd = RawConnect(AddressOf(agent_->socket_name()));
  ASSERT_GE(fd, 0);
  std::string hello = Hello(pid, getpid());
  send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
  EXPECT_TRUE(ClosedByAgent(fd));
  close(fd);
  // The real one still gets its place.
  monitor.Go({Hello(pid, monitor.os_pid()), Output(pid, "real")});
  EXPECT_TRUE(SawOutput("real"));
}

// The same, sent before Started(): held, then refused once the OS pid is known.
TEST_F(NodeAgentTest, AHelloBeforeStartedIsDecidedWhenItIs) {
  Pid pid = MakePid(1002);
  agent_->Register(pid, 7);
  int fd = RawConnect(AddressOf(agent_->socket_name()));  // kept for now: a launch is in flight
  ASSERT_GE(fd, 0);
  std::string hello = Hello(pid, getpid());
  ASSERT_EQ(send(fd, hello.data(), hello.size(), MSG_NOSIGNAL), static_cast<ssize_t>(hello.size()));
  FakeMonitor monitor(agent_->socket_name());
  agent_->Started(pid, monitor.os_pid());
  EXPECT_TRUE(ClosedByAgent(fd));
  close(fd);
  monitor.Go({Hello(pid, monitor.os_pid()), Output(pid, "real")});
  EXPECT_TRUE(SawOutput("real"));
}

// 1,100 connections from a stranger, with this process's fd limit set so low
// that keeping them would exhaust it: each is closed at once (or, while a
// launch is in flight, at most kMaxUnidentified are kept until it settles),
// and the launched process then connects and is heard.
void NodeAgentTest::Flood(bool launch_in_flight) {
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  size_t baseline = OpenFds();
  rlimit low = saved;
  low.rlim_cur = baseline + NodeAgent::kMaxUnidentified + 200;
  ASSERT_LT(low.rlim_cur, static_cast<rlim_t>(kFlood));
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);

  Pid pid = MakePid(2000);
  agent_->Register(pid, 7);
  FakeMonitor monitor(agent_->socket_name());
  if (!launch_in_flight) agent_->Started(pid, monitor.os_pid());
  int connected[2];
  ASSERT_EQ(pipe(connected), 0);
  sockaddr_un addr = AddressOf(agent_->socket_name());
  pid_t flooder = fork();
  if (flooder == 0) {
    close(connected[0]);
    rlimit own = saved;
    own.rlim_cur = own.rlim_max;
    setrlimit(RLIMIT_NOFILE, &own);
    std::vector<int> fds;
    for (int i = 0; i < kFlood; ++i) {
      int fd = RawConnect(addr);
      if (fd < 0) _exit(10);
      fds.push_back(fd);
    }
    if (write(connected[1], "c", 1) != 1) _exit(11);
    int closed = 0;
    for (int fd : fds) closed += ClosedByAgent(fd) ? 1 : 0;
    _exit(closed == kFlood ? 0 : 12);
  }
  close(connected[1]);
  char c;
  EXPECT_EQ(read(connected[0], &c, 1), 1) << "the flooder could not connect";
  close(connected[0]);
  if (launch_in_flight) agent_->Started(pid, monitor.os_pid());  // the launch settles: strangers go
  int status = 0;
  EXPECT_EQ(waitpid(flooder, &status, 0), flooder);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the agent did not close every stranger's connection (status " << status << ")";
  monitor.Go({Hello(pid, monitor.os_pid()), Output(pid, "still here")});
  EXPECT_TRUE(SawOutput("still here")) << "the launched process was not heard";
  EXPECT_LE(OpenFds(), baseline + 8) << "the agent holds on to connections";
  setrlimit(RLIMIT_NOFILE, &saved);
}

// The process table's rules (lib/process/bridge.h), as the node reports them.
TEST_F(NodeAgentTest, AProcessWhoseMonitorDiesIsReportedKilledOnce) {
  Pid pid = MakePid(1003);
  agent_->Register(pid, 7);
  auto monitor = std::make_unique<FakeMonitor>(agent_->socket_name());
  agent_->Started(pid, monitor->os_pid());
  monitor->Go({Hello(pid, monitor->os_pid()), Output(pid, "up")});
  ASSERT_TRUE(SawOutput("up"));
  EXPECT_EQ(agent_->live(), 1u);
  monitor.reset();  // SIGKILLed: its connection closes with no exit reported
  std::optional<pb::ExitEvent> exit = ExitOf(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->signal(), SIGKILL);
  EXPECT_EQ(exit->error(), "its monitor died");
  EXPECT_EQ(agent_->live(), 0u);
  std::lock_guard<std::mutex> lock(mu_);
  int exits = 0;
  for (const pb::ProcessEvent& e : events_) exits += e.has_exit() ? 1 : 0;
  EXPECT_EQ(exits, 1);
}

TEST_F(NodeAgentTest, AProcessThatEndsWithoutConnectingExits127) {
  Pid pid = MakePid(1004);
  agent_->Register(pid, 7);
  auto monitor = std::make_unique<FakeMonitor>(agent_->socket_name());
  agent_->Started(pid, monitor->os_pid());
  monitor.reset();  // dies before it connects
  std::optional<pb::ExitEvent> exit = ExitOf(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->code(), 127);
  EXPECT_EQ(exit->error(), "ended before init()");
  EXPECT_EQ(agent_->live(), 0u);
}

// Its monitor ended (and was reaped) before Started() could open a pidfd for
// it: it is still reported, not waited on for ever.
TEST_F(NodeAgentTest, AProcessWhoseMonitorEndedBeforeItWasStartedExits127) {
  Pid pid = MakePid(1005);
  agent_->Register(pid, 7);
  auto monitor = std::make_unique<FakeMonitor>(agent_->socket_name());
  const pid_t os_pid = monitor->os_pid();
  monitor.reset();  // killed and reaped: pidfd_open(os_pid) fails with ESRCH
  agent_->Started(pid, os_pid);
  std::optional<pb::ExitEvent> exit = ExitOf(pid);
  ASSERT_TRUE(exit.has_value()) << "a process that ended before Started() was never reported";
  EXPECT_EQ(exit->code(), 127);
  EXPECT_EQ(exit->error(), "ended before init()");
  EXPECT_EQ(agent_->live(), 0u);
}

TEST_F(NodeAgentTest, AFloodCostsNoFdsAndTheLaunchedProcessConnects) { Flood(/*launch_in_flight=*/false); }

TEST_F(NodeAgentTest, AFloodDuringALaunchIsBoundedAndDroppedWhenItSettles) { Flood(/*launch_in_flight=*/true); }

}  // namespace
}  // namespace constellation::daemon

namespace constellation::daemon {
namespace {

// Exit verdicts: the master is asked about the pids a process watches that
// are not this node's own, once, and again when it comes back (AskAgain).
TEST_F(NodeAgentTest, AWatchAsksTheMasterAboutOtherNodesProcessesOnly) {
  Pid a = MakePid(1100), b = MakePid(1101), elsewhere = MakePid(1102);
  agent_->Register(a, 7);
  agent_->Register(b, 7);
  FakeMonitor monitor(agent_->socket_name());
  agent_->Started(a, monitor.os_pid());
  monitor.Go({Hello(a, monitor.os_pid()), Watch({b, elsewhere}), Watch({elsewhere}), Output(a, "watched")});
  ASSERT_TRUE(SawOutput("watched"));
  ASSERT_TRUE(Asked(1));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_EQ(asked_.size(), 1u) << "b runs here (its monitor tells), and asking twice asks once";
    EXPECT_EQ(asked_[0].first, 7u);
    EXPECT_EQ(asked_[0].second, elsewhere);
  }
  agent_->AskAgain();  // the master came back
  ASSERT_TRUE(Asked(2));
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(asked_[1].second, elsewhere);
}

TEST_F(NodeAgentTest, AWatchOfMoreThan1024PidsDropsTheConnection) {
  Pid a = MakePid(1110);
  agent_->Register(a, 7);
  FakeMonitor monitor(agent_->socket_name());
  agent_->Started(a, monitor.os_pid());
  std::vector<Pid> many;
  for (int i = 0; i <= GoneTable::kMaxPidsPerPacket; ++i) many.push_back(MakePid(static_cast<uint16_t>(2000 + i)));
  monitor.Go({Hello(a, monitor.os_pid()), Watch(many)});
  std::optional<pb::ExitEvent> exit = ExitOf(a);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->error(), "its monitor died") << "its connection was dropped";
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(asked_.empty());
}

}  // namespace
}  // namespace constellation::daemon
