// Local mode's bridge socket (issue 11, item 3): whoever connects to it can
// ask the bridge to spawn processes as the program's user. It is a file in a
// private directory (0700, its user's), never an abstract socket that every
// user can see in /proc/net/unix and connect to; the bridge refuses a
// connection from another uid (root reaches the directory, not the bridge);
// the directory is gone when the program ends.
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

constexpr uid_t kNobody = 65534;

// The unix sockets `os_pid` holds that listen, by their /proc/net/unix path
// ("@name" for an abstract one).
std::set<std::string> ListeningUnixSockets(pid_t os_pid) {
  std::set<std::string> inodes;
  std::string fd_dir = "/proc/" + std::to_string(os_pid) + "/fd";
  DIR* d = opendir(fd_dir.c_str());
  if (d == nullptr) return {};
  while (dirent* e = readdir(d)) {
    char target[256];
    ssize_t n = readlink((fd_dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    std::string link(target, n);
    if (absl::StartsWith(link, "socket:[")) inodes.insert(link.substr(8, link.size() - 9));
  }
  closedir(d);
  std::set<std::string> paths;
  std::ifstream table("/proc/net/unix");
  std::string line;
  std::getline(table, line);  // header
  while (std::getline(table, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // Num RefCount Protocol Flags Type St Inode [Path]; flags 00010000: listening.
    if (f.size() >= 8 && f[3] == "00010000" && inodes.contains(f[6])) paths.insert(f[7]);
  }
  return paths;
}

// Runs print_then_wait_stdin (optionally under `prefix`, e.g. setpriv) until
// it has printed; the caller ends it with CloseStdin().
std::unique_ptr<Program> StartWaiting(std::vector<std::string> prefix, const std::string& binary) {
  RunOptions options;
  std::string path = binary;
  if (!prefix.empty()) {
    path = prefix[0];
    options.args.assign(prefix.begin() + 1, prefix.end());
    options.args.push_back(binary);
  }
  options.args.push_back("print_then_wait_stdin");
  options.close_stdin = false;
  options.format = std::nullopt;  // human: the line is "ready" (with the process's tag, maybe)
  auto program = std::make_unique<Program>(path, options);
  std::string line;
  while (program->NextLine(&line) && !absl::StrContains(line, "ready")) {
  }
  return program;
}

std::string BridgeSocket(const Program& program) {
  std::set<std::string> sockets = ListeningUnixSockets(program.os_pid());
  EXPECT_EQ(sockets.size(), 1u) << "the bridge (OS pid " << program.os_pid() << ") listens on one unix socket";
  return sockets.empty() ? "" : *sockets.begin();
}

// Connects from a forked child that first becomes `uid` (if not ours).
// Returns the child's errno from connect(), or 0 with `*closed` telling
// whether the bridge then closed the connection.
int ConnectAs(uid_t uid, const std::string& path, bool* closed) {
  int report[2];
  EXPECT_EQ(pipe(report), 0);
  pid_t child = fork();
  if (child == 0) {
    close(report[0]);
    if (uid != geteuid() && (setgid(uid) != 0 || setuid(uid) != 0)) _exit(1);
    int result[2] = {0, 0};
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof(addr.sun_path) - 1));
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      result[0] = errno;
    } else {
      timeval guard{30, 0};  // a failure guard: the bridge answers at once
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
      char c;
      ssize_t n = recv(fd, &c, 1, 0);
      result[1] = n == 0 || (n < 0 && errno == ECONNRESET);
    }
    if (write(report[1], result, sizeof(result)) != sizeof(result)) _exit(2);
    _exit(0);
  }
  close(report[1]);
  int result[2] = {-1, 0};
  EXPECT_EQ(read(report[0], result, sizeof(result)), static_cast<ssize_t>(sizeof(result)));
  close(report[0]);
  waitpid(child, nullptr, 0);
  *closed = result[1] != 0;
  return result[0];
}

TEST(BridgeSocket, IsAFileInAPrivateDirectoryRemovedAtExit) {
  std::unique_ptr<Program> program = StartWaiting({}, ScenarioPath());
  std::string path = BridgeSocket(*program);
  ASSERT_FALSE(path.empty());
  ASSERT_EQ(path[0], '/') << "an abstract socket any user can connect to: " << path;
  std::string dir = path.substr(0, path.rfind('/'));
  struct stat st;
  ASSERT_EQ(lstat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
  EXPECT_EQ(st.st_uid, geteuid());
  program->CloseStdin();
  EXPECT_EQ(program->Wait().ToString(), "exit code 0");
  EXPECT_NE(lstat(dir.c_str(), &st), 0) << dir << " is left behind";
}

TEST(BridgeSocket, AnotherUserCannotConnect) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  // The program runs as nobody (a copy of the binary nobody can run); root
  // and a third user try its bridge.
  char dir[] = "/tmp/bridge_socket_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string binary = std::string(dir) + "/scenarios";
  {
    std::ifstream in(ScenarioPath(), std::ios::binary);
    std::ofstream out(binary, std::ios::binary);
    out << in.rdbuf();
  }
  chmod(binary.c_str(), 0755);
  chmod(dir, 0755);
  std::unique_ptr<Program> program =
      StartWaiting({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--reset-env"}, binary);
  std::string path = BridgeSocket(*program);
  ASSERT_FALSE(path.empty());
  ASSERT_EQ(path[0], '/') << path;

  bool closed = false;
  EXPECT_EQ(ConnectAs(kNobody - 1, path, &closed), EACCES) << "another user reached the bridge's socket";
  EXPECT_EQ(ConnectAs(0, path, &closed), 0) << "root passes the directory's mode";
  EXPECT_TRUE(closed) << "the bridge kept a connection from another uid";
  program->CloseStdin();
  EXPECT_EQ(program->Wait().ToString(), "exit code 0");
  unlink(binary.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace constellation::testing
