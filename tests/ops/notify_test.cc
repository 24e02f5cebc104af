// Issue 16, item 4: the daemon as a systemd Type=notify service. A test-owned
// unix datagram socket stands in for systemd's NOTIFY_SOCKET (SO_PASSCRED
// tells which daemon sent what): READY=1 comes only once the daemon's ports
// accept (the test connects as READY arrives), STATUS= says what serves and
// how many nodes are attached, WATCHDOG=1 keep-alives come at half of
// WATCHDOG_USEC, and SIGTERM drains: a running process is let finish within
// --drain-timeout, or is killed when that is short, and the daemon exits 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

// True if a TCP connection to HOST:PORT is accepted now.
bool Accepts(const std::string& host_port) {
  std::pair<std::string, std::string> parts = absl::StrSplit(host_port, absl::MaxSplits(':', 1));
  int port = 0;
  if (!absl::SimpleAtoi(parts.second, &port)) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, parts.first.c_str(), &addr.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// The addresses a STATUS= names: "serving on A[, job API on B]; ...".
std::vector<std::string> ServingAddresses(const std::string& status) {
  std::vector<std::string> addrs;
  std::string head = status.substr(0, status.find(';'));
  for (std::string marker : {"serving on ", "job API on "}) {
    size_t at = head.find(marker);
    if (at == std::string::npos) continue;
    std::string rest = head.substr(at + marker.size());
    addrs.push_back(rest.substr(0, rest.find(',')));
  }
  return addrs;
}

// What one daemon (by OS pid) told the socket.
struct Told {
  bool ready = false;
  bool ready_port_answered = false;  // every address of READY's STATUS accepted a connection
  std::vector<std::string> statuses;
  int watchdogs = 0;
  bool stopping = false;
};

// The notify socket and a thread that reads it, as systemd would.
class NotifySocket {
 public:
  NotifySocket() {
    // Under /tmp: TEST_TMPDIR can be longer than a socket path may be (108 bytes).
    char dir[] = "/tmp/notify-XXXXXX";
    if (mkdtemp(dir) == nullptr) ADD_FAILURE() << "mkdtemp";
    dir_ = dir;
    path_ = dir_ + "/notify.sock";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << path_;
    if (pipe2(stop_, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2";
    reader_ = std::thread([this] { ReadLoop(); });
  }
  ~NotifySocket() {
    (void)!write(stop_[1], "x", 1);
    reader_.join();
    close(fd_);
    close(stop_[0]);
    close(stop_[1]);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

  // Waits (bounded: a hang guard) until `done(told)` holds for `pid`.
  template <typename Pred>
  bool WaitFor(pid_t pid, Pred done, absl::Duration limit = absl::Seconds(60)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoSeconds(limit), [&] { return done(told_[pid]); });
  }
  Told Get(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    return told_[pid];
  }

 private:
  void ReadLoop() {
    while (true) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents != 0) return;
      char buf[4096];
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
      iovec iov = {buf, sizeof(buf)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = recvmsg(fd_, &msg, 0);
      if (n <= 0) continue;
      pid_t pid = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
          pid = reinterpret_cast<ucred*>(CMSG_DATA(c))->pid;
        }
      }
      Handle(pid, std::string(buf, static_cast<size_t>(n)));
    }
  }
  void Handle(pid_t pid, const std::string& message) {
    std::string status;
    bool ready = false;
    for (absl::string_view line : absl::StrSplit(message, '\n')) {
      if (line == "READY=1") ready = true;
      if (absl::StartsWith(line, "STATUS=")) status = std::string(line.substr(7));
    }
    // As the message arrives: the ports READY names must accept now.
    bool answered = false;
    if (ready) {
      std::vector<std::string> addrs = ServingAddresses(status);
      answered = !addrs.empty();
      for (const std::string& addr : addrs) answered = answered && Accepts(addr);
    }
    std::lock_guard<std::mutex> lock(mu_);
    Told& told = told_[pid];
    if (ready && told.ready) ADD_FAILURE() << "a second READY=1 from " << pid;
    if (ready) told.ready_port_answered = answered;
    told.ready = told.ready || ready;
    if (!status.empty()) told.statuses.push_back(status);
    for (absl::string_view line : absl::StrSplit(message, '\n')) {
      if (line == "WATCHDOG=1") ++told.watchdogs;
      if (line == "STOPPING=1") told.stopping = true;
    }
    cv_.notify_all();
  }

  std::string dir_, path_;
  int fd_ = -1;
  int stop_[2] = {-1, -1};
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<pid_t, Told> told_;
  std::thread reader_;
};

// The environment systemd gives a Type=notify unit with WatchdogSec=1 (keep-alives every 0.5 s).
class NotifyTest : public ::testing::Test {
 protected:
  NotifyTest() {
    setenv("NOTIFY_SOCKET", socket_.path().c_str(), 1);
    setenv("WATCHDOG_USEC", "1000000", 1);
  }
  ~NotifyTest() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
  }
  static ClusterOptions OneNode(absl::Duration drain) {
    ClusterOptions options;
    options.insecure = true;
    options.nodes = {{"1 GiB", "1", true}};
    options.node_args = {"--drain-timeout=" + absl::FormatDuration(drain)};
    options.master_args = {"--drain-timeout=" + absl::FormatDuration(drain)};
    return options;
  }
  NotifySocket socket_;
};

TEST_F(NotifyTest, ReadyOnlyWhenServingWithStatusAndKeepAlives) {
  Cluster cluster(OneNode(absl::Seconds(30)));
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  for (Daemon* daemon : {&cluster.node(0), &cluster.master()}) {
    SCOPED_TRACE(daemon->name());
    ASSERT_TRUE(socket_.WaitFor(daemon->os_pid(), [](const Told& t) { return t.ready; })) << daemon->Describe();
    Told told = socket_.Get(daemon->os_pid());
    EXPECT_TRUE(told.ready_port_answered) << "READY=1 came before its ports accepted: " << told.statuses.front();
    // Keep-alives keep coming (three at half of 1 s: the loop is alive, not one burst at start).
    EXPECT_TRUE(socket_.WaitFor(daemon->os_pid(), [](const Told& t) { return t.watchdogs >= 3; }))
        << daemon->Describe();
  }
  std::vector<std::string> node_statuses = socket_.Get(cluster.node(0).os_pid()).statuses;
  ASSERT_FALSE(node_statuses.empty());
  EXPECT_THAT(node_statuses.front(), HasSubstr("serving on " + cluster.node_addr(0)));
  // The master says how many nodes are attached, and says it again when that changes.
  EXPECT_TRUE(socket_.WaitFor(cluster.master().os_pid(), [](const Told& t) {
    return !t.statuses.empty() && absl::StrContains(t.statuses.back(), "1 of 1 nodes attached");
  })) << cluster.master().Describe();
  Told master = socket_.Get(cluster.master().os_pid());
  EXPECT_THAT(master.statuses.front(), HasSubstr("serving on " + cluster.master_addr()));
  EXPECT_THAT(master.statuses.front(), HasSubstr("job API on " + cluster.bridge_addr()));

  kill(cluster.master().os_pid(), SIGTERM);
  EXPECT_EQ(cluster.master().WaitExit(absl::Seconds(20)), std::optional<int>(0)) << cluster.master().Describe();
  EXPECT_TRUE(socket_.Get(cluster.master().os_pid()).stopping);
}

// Starts print_then_wait_stdin (human format) and waits for its "ready".
std::unique_ptr<Program> StartWaiter(Cluster& cluster) {
  DeployOptions options;
  options.args = {"print_then_wait_stdin"};
  options.json = false;
  options.close_stdin = false;
  options.check_nothing_left = false;
  std::unique_ptr<Program> run = cluster.StartDeploy(ScenarioPath(), options);
  std::string line;
  while (run->NextLine(&line)) {
    if (absl::StrContains(line, "ready")) return run;
  }
  ADD_FAILURE() << "the program did not start: " << run->stderr_text() << cluster.Describe();
  return run;
}

TEST_F(NotifyTest, SigtermLetsARunningProcessFinish) {
  Cluster cluster(OneNode(absl::Seconds(120)));
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  std::unique_ptr<Program> run = StartWaiter(cluster);
  Daemon& node = cluster.node(0);
  kill(node.os_pid(), SIGTERM);
  // Draining: it says so, takes no new work, and keeps the process running.
  ASSERT_TRUE(socket_.WaitFor(node.os_pid(), [](const Told& t) {
    return t.stopping && !t.statuses.empty() && absl::StrContains(t.statuses.back(), "draining: 1 process");
  })) << node.Describe();
  EXPECT_FALSE(node.exited());
  DeployOptions refused;
  refused.args = {"exit0"};
  refused.check_nothing_left = false;
  refused.json = false;
  RunResult second = cluster.Deploy(ScenarioPath(), refused);
  EXPECT_NE(second.exit.ShellCode(), 0) << "a draining node took new work";
  EXPECT_THAT(second.out + second.err, HasSubstr("draining")) << second.Dump();
  // The process ends on its own: the node exits 0 long before the 120 s.
  run->CloseStdin();
  ExitStatus exit = run->Wait();
  EXPECT_EQ(exit.ToString(), "exit code 0") << run->stderr_text();
  EXPECT_THAT(run->stdout_text(), HasSubstr("stdin closed"));
  EXPECT_EQ(node.WaitExit(absl::Seconds(30)), std::optional<int>(0)) << node.Describe();
}

TEST_F(NotifyTest, SigtermKillsWhatOutlivesTheDrainTimeout) {
  Cluster cluster(OneNode(absl::Milliseconds(500)));
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  std::unique_ptr<Program> run = StartWaiter(cluster);
  Daemon& node = cluster.node(0);
  kill(node.os_pid(), SIGTERM);
  EXPECT_EQ(node.WaitExit(absl::Seconds(30)), std::optional<int>(0)) << node.Describe();
  EXPECT_TRUE(node.WaitLaunchedGone(absl::Seconds(10)).empty()) << "a process outlived its node";
  ExitStatus exit = run->Wait();  // the job ends with its root killed (or its node lost)
  EXPECT_NE(exit.ShellCode(), 0) << run->stdout_text() << run->stderr_text();
}

}  // namespace
}  // namespace constellation::testing
