// Issue 5, item 6 (a), the rest: on the loopback cluster, deploying the same
// binary twice uploads it once (the caches hold one file per binary, never
// rewritten); the human format through cdeploy; and the daemon's and
// cdeploy's command lines: a bad nodes.toml makes the master exit non-zero
// naming the line, --help/--version exit 0, a bridge that is not there or a
// file that is not an executable gets a one-line error and exit code 2.
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::IsSupersetOf;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;

struct CachedFile {
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  off_t size = 0;
  bool operator==(const CachedFile& o) const { return inode == o.inode && mtime_ns == o.mtime_ns && size == o.size; }
};

// Every entry of a cache directory (temporary files included).
std::map<std::string, CachedFile> ListCache(const std::string& dir) {
  std::map<std::string, CachedFile> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return files;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (stat((dir + "/" + name).c_str(), &st) != 0) continue;
    files[name] = {st.st_ino, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, st.st_size};
  }
  closedir(d);
  return files;
}

std::string Sha256Hex(const std::string& path) {
  CommandResult r = RunCommand({"sha256sum", path});
  EXPECT_EQ(r.code, 0) << r.output << r.error;
  return r.output.substr(0, 64);
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// ---- upload once ----------------------------------------------------------------------------

TEST(UploadOnce, SameBinaryTwiceIsUploadedOnceToEachNode) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  std::string binary = ScenarioPath();
  std::string sha = Sha256Hex(binary);
  struct stat st;
  ASSERT_EQ(stat(binary.c_str(), &st), 0);

  // Ten children: the root and children land on all three nodes (spread).
  RunResult first = cluster.Deploy(binary, {"children", "10"});
  ASSERT_EQ(first.exit.ToString(), "exit code 0") << first.err << cluster.Describe();
  std::map<std::string, CachedFile> master_before = ListCache(cluster.master_cache());
  ASSERT_THAT(master_before, SizeIs(1)) << "the master's cache should hold exactly the binary";
  EXPECT_EQ(master_before.begin()->first, sha);
  EXPECT_EQ(master_before.begin()->second.size, st.st_size);
  std::vector<std::map<std::string, CachedFile>> nodes_before;
  int nodes_used = 0;
  for (size_t i = 0; i < cluster.size(); ++i) {
    nodes_before.push_back(ListCache(cluster.node_cache(i)));
    // One file per binary, named by its SHA-256, whole; no temporary files left.
    if (nodes_before.back().empty()) continue;
    ++nodes_used;
    ASSERT_THAT(nodes_before.back(), SizeIs(1)) << "node " << i;
    EXPECT_EQ(nodes_before.back().begin()->first, sha) << "node " << i;
    EXPECT_EQ(nodes_before.back().begin()->second.size, st.st_size) << "node " << i;
  }
  // 11 processes of 100 MiB and 1/16 cpu, spread by free share: more than one node.
  EXPECT_GE(nodes_used, 2) << "every process ran on one node?";

  absl::Time start = absl::Now();
  RunResult second = cluster.Deploy(binary, {"children", "10"});
  absl::Duration second_took = absl::Now() - start;
  ASSERT_EQ(second.exit.ToString(), "exit code 0") << second.err;
  // Nothing rewritten: same files, same inodes (an upload renames a new file
  // into place), same modification times.
  EXPECT_EQ(ListCache(cluster.master_cache()), master_before) << "the master received the binary again";
  for (size_t i = 0; i < cluster.size(); ++i) {
    std::map<std::string, CachedFile> after = ListCache(cluster.node_cache(i));
    if (nodes_before[i].empty()) {
      // It may get its first processes now: then the binary, once.
      EXPECT_LE(after.size(), 1u) << "node " << i;
      continue;
    }
    EXPECT_EQ(after, nodes_before[i]) << "node " << i << " received the binary again";
  }
  std::cerr << "second (cached) deployment of children 10 took " << second_took << "\n";
}

// ---- the human format through cdeploy ---------------------------------------------------------

TEST(HumanFormat, SameLayoutAsLocalMode) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  DeployOptions options;
  options.args = {"exit1"};
  options.json = false;
  RunResult r = cluster.Deploy(ScenarioPath(), options);
  EXPECT_EQ(r.exit.ToString(), "exit code 1");
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_THAT(lines, SizeIs(3)) << r.out;
  EXPECT_THAT(lines[0], MatchesRegex("[0-9a-f]{7}:"));
  EXPECT_EQ(lines[1], "   failing");
  EXPECT_EQ(lines[2], "   exited: 1");
  EXPECT_EQ(r.err, "");
  // Local mode prints the same, pid aside.
  RunOptions local;
  local.args = {"exit1"};
  local.format = std::nullopt;
  RunResult l = RunScenario(local);
  std::vector<std::string> local_lines = Lines(l.out);
  ASSERT_THAT(local_lines, SizeIs(3)) << l.out;
  EXPECT_EQ(lines[1], local_lines[1]);
  EXPECT_EQ(lines[2], local_lines[2]);
}

// ---- the daemon's command line ------------------------------------------------------------------

TEST(DaemonCli, HelpAndVersionExitZero) {
  CommandResult help = RunCommand({DaemonPath(), "--help"});
  EXPECT_EQ(help.code, 0) << help.error;
  EXPECT_THAT(help.output, HasSubstr("usage: constellation"));
  EXPECT_THAT(help.output, HasSubstr("nodes.toml"));
  EXPECT_EQ(help.error, "");
  CommandResult version = RunCommand({DaemonPath(), "--version"});
  EXPECT_EQ(version.code, 0) << version.error;
  EXPECT_THAT(version.output, MatchesRegex("constellation [0-9]+\\.[0-9]+\\.[0-9]+\n"));
  // No arguments, or a bad option: usage on stderr and a non-zero code.
  CommandResult none = RunCommand({DaemonPath()});
  EXPECT_NE(none.code, 0);
  EXPECT_THAT(none.error, HasSubstr("usage"));
  CommandResult bad = RunCommand({DaemonPath(), "--frobnicate"});
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.error, HasSubstr("--frobnicate"));
  // --peer-timeout: a duration from 1s to 1h, anything else refused with exit 2 and the value named.
  for (const char* value : {"0s", "500ms", "2h", "-1s", "inf", "ten", ""}) {
    CommandResult timeout = RunCommand({DaemonPath(), "127.0.0.1:0", std::string("--peer-timeout=") + value});
    EXPECT_EQ(timeout.code, 2) << value << ": " << timeout.error;
    EXPECT_THAT(timeout.error, HasSubstr(std::string("--peer-timeout: expected a duration from 1s to 1h"))) << value;
  }
}

TEST(DaemonCli, BadNodesTomlExitsNonZeroNamingTheLine) {
  std::string dir = MakeTempDir("toml-");
  std::string cache = MakeTempDir("toml-cache-");
  struct Case {
    std::string name, text, want;  // `want`: in stderr after "<path>:"
  };
  std::vector<Case> cases = {
      {"missing_field.toml", "[[nodes]]\nfabric_addr = \"127.0.0.1:1\"\nbridge_bind = \"127.0.0.1:0\"\ncpu = 1\n",
       "1: "},
      {"decimal_unit.toml",
       "# a comment\n[[nodes]]\nfabric_addr = \"127.0.0.1:1\"\nbridge_bind = \"127.0.0.1:0\"\nmem = \"5 GB\"\ncpu = "
       "1\n",
       "5: "},
      {"duplicate.toml",
       "[[nodes]]\nfabric_addr = \"127.0.0.1:1\"\nbridge_bind = \"127.0.0.1:0\"\nmem = \"1 GiB\"\ncpu = 1\n\n"
       "[[nodes]]\nfabric_addr = \"127.0.0.1:1\"\nmem = \"1 GiB\"\ncpu = 1\n",
       "7: "},  // the duplicate's [[nodes]] line
      {"unknown_key.toml",
       "[[nodes]]\nfabric_addr = \"127.0.0.1:1\"\nbridge_bind = \"127.0.0.1:0\"\nmem = \"1 GiB\"\ncpu = 1\ndisk = 3\n",
       "6: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string path = WriteFile(dir, c.name, c.text);
    CommandResult r = RunCommand({DaemonPath(), "127.0.0.1:0", path, "--cache-dir=" + cache}, absl::Seconds(20));
    EXPECT_NE(r.code, 0) << r.output << r.error;
    EXPECT_THAT(r.error, HasSubstr(path + ":" + c.want)) << "the error should name the file and line";
    EXPECT_THAT(r.output, Not(HasSubstr("listening"))) << "it must not start";
  }
  // No nodes at all: there is no line to name, but it is an error all the same.
  std::string empty = WriteFile(dir, "empty.toml", "# no nodes here\n");
  CommandResult r = RunCommand({DaemonPath(), "127.0.0.1:0", empty, "--cache-dir=" + cache}, absl::Seconds(20));
  EXPECT_NE(r.code, 0) << r.output << r.error;
  EXPECT_THAT(r.error, HasSubstr("no nodes"));
  EXPECT_THAT(r.error, HasSubstr(empty));
  // A file that is not there.
  CommandResult missing = RunCommand({DaemonPath(), "127.0.0.1:0", dir + "/absent.toml", "--cache-dir=" + cache});
  EXPECT_NE(missing.code, 0);
  EXPECT_THAT(missing.error, HasSubstr("absent.toml"));
}

// SIGTERM (systemd's stop) ends every daemon promptly, with code 0.
TEST(DaemonCli, DaemonsExitOnSigterm) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  RunResult r = cluster.Deploy(ScenarioPath(), {"children", "3"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  kill(cluster.master().os_pid(), SIGTERM);
  std::optional<int> master = cluster.master().WaitExit(absl::Seconds(10));
  EXPECT_EQ(master, std::optional<int>(0)) << "the master did not exit within 10 s of SIGTERM while its nodes run\n"
                                           << cluster.master().Describe();
  for (size_t i = 0; i < cluster.size(); ++i) {
    kill(cluster.node(i).os_pid(), SIGTERM);
    std::optional<int> node = cluster.node(i).WaitExit(absl::Seconds(10));
    EXPECT_EQ(node, std::optional<int>(0)) << "node " << i << " did not exit within 10 s of SIGTERM\n"
                                           << cluster.node(i).Describe();
  }
}

// A node that loses its master kills everything it started once its master
// grace is over (1 s here; 60 s by default, for a master that restarts);
// cdeploy, having lost the master for longer than its --reconnect-timeout,
// exits 2 with an error.
TEST(DaemonCli, NodesKillTheirProcessesWhenTheMasterDies) {
  ClusterOptions cluster_options = ThreeNodeLoopback();
  cluster_options.node_args = {"--master-grace=1s"};
  Cluster cluster(std::move(cluster_options));
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  DeployOptions options;
  options.args = {"tree", "2"};  // seven processes that sleep until killed
  options.cdeploy_args = {"--reconnect-timeout=3s"};
  std::unique_ptr<Program> run = cluster.StartDeploy(ScenarioPath(), options);
  EventReader reader(run.get());
  ASSERT_TRUE(reader.ReadUntil([&](const Event&) {
    int up = 0;
    for (const auto& [pid, out] : reader.out) up += out.rfind("os ", 0) == 0 ? 1 : 0;
    return up == 7;
  })) << run->stdout_text()
      << run->stderr_text();
  // 7 processes, each with its monitor, and what each node keeps for the
  // deployment (its zygote and the zygote's spare: node_zygotes.h), all gone below.
  std::vector<pid_t> reported;
  for (const auto& [pid, out] : reader.out) reported.push_back(std::stoi(out.substr(3)));
  std::vector<pid_t> launched = cluster.LaunchedAnywhere();
  EXPECT_THAT(launched, IsSupersetOf(reported));
  EXPECT_GE(launched.size(), 14u);
  cluster.master().Crash();
  for (size_t i = 0; i < cluster.size(); ++i) {
    EXPECT_THAT(cluster.node(i).WaitLaunchedGone(absl::Seconds(15)), IsEmpty())
        << "node " << i << " still runs processes 15 s after its master died";
  }
  ExitStatus exit = run->Wait();
  EXPECT_EQ(exit.ToString(), "exit code 2") << run->stderr_text();
  std::vector<std::string> err = Lines(run->stderr_text());
  ASSERT_THAT(err, SizeIs(1)) << run->stderr_text();
  EXPECT_THAT(err[0], ::testing::StartsWith("cdeploy: "));
}

// ---- cdeploy's own failures --------------------------------------------------------------------

// A port on 127.0.0.1 with nothing listening: bound, then closed.
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

void ExpectOneLineError(const CommandResult& r, const std::string& fragment) {
  EXPECT_EQ(r.code, 2) << r.output << r.error;
  EXPECT_EQ(r.output, "");
  std::vector<std::string> lines = Lines(r.error);
  ASSERT_THAT(lines, SizeIs(1)) << "want a one-line error, got:\n" << r.error;
  EXPECT_THAT(lines[0], ::testing::StartsWith("cdeploy: "));
  EXPECT_THAT(lines[0], HasSubstr(fragment));
}

TEST(CdeployCli, BridgeNotThereIsAOneLineErrorAndExit2) {
  std::string bridge = absl::StrCat("127.0.0.1:", UnusedPort());
  absl::Time start = absl::Now();
  CommandResult r = RunCommand(
      {CdeployPath(), bridge, ScenarioPath(), "--tls=" + TestPki::Get().Client(), "--format=json", "--", "exit0"});
  ExpectOneLineError(r, bridge);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20)) << "it should give up within seconds";
}

TEST(CdeployCli, NotAnExecutableIsAOneLineErrorAndExit2) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  std::string dir = MakeTempDir("notexec-");
  std::string text = WriteFile(dir, "program.txt", "not a program\n");
  chmod(text.c_str(), 0644);
  ExpectOneLineError(RunCommand({CdeployPath(), cluster.bridge_addr(), cluster.ClientTlsFlag(), text}), "program.txt");
  ExpectOneLineError(RunCommand({CdeployPath(), cluster.bridge_addr(), cluster.ClientTlsFlag(), dir}), dir);
  ExpectOneLineError(RunCommand({CdeployPath(), cluster.bridge_addr(), cluster.ClientTlsFlag(), dir + "/absent"}),
                     "absent");
  // Nothing reached the cluster.
  EXPECT_THAT(ListCache(cluster.master_cache()), IsEmpty());
  // And the cluster still works.
  RunResult r = cluster.Deploy(ScenarioPath(), {"exit0"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
}

TEST(CdeployCli, HelpExitsZeroAndBadUsageExits2) {
  CommandResult help = RunCommand({CdeployPath(), "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.output, HasSubstr("usage: cdeploy"));
  CommandResult none = RunCommand({CdeployPath()});
  EXPECT_EQ(none.code, 2);
  CommandResult format = RunCommand({CdeployPath(), "127.0.0.1:1", ScenarioPath(), "--format=xml"});
  EXPECT_EQ(format.code, 2);
  EXPECT_THAT(format.error, HasSubstr("xml"));
}

}  // namespace
}  // namespace constellation::testing
