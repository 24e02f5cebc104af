// The daemons' /metrics (docs/metrics.md) on a loopback cluster: a master and
// a node started with --metrics=127.0.0.1:0 print where they serve it; a
// deployment of //examples:hello (two processes) moves the node's spawn counters and
// latency histogram and the master's jobs, uploads and nodes.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "tests/cluster/cluster_fixture.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

// An HTTP/1.0 GET of http://`address``path`: the whole answer (until the
// server closes; a 30 s receive timeout guards against a hang).
std::string HttpGet(const std::string& address, const std::string& path) {
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) return "bad address " + address;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval guard{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, address.substr(0, address.rfind(':')).c_str(), &to.sin_addr);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) {
    std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) answer.append(buf, n);
    }
  }
  close(fd);
  return answer;
}

// One scrape: the samples by series ("name{labels}"), checked to be a 200 in the text format.
class Scrape {
 public:
  explicit Scrape(const std::string& address) {
    std::string answer = HttpGet(address, "/metrics");
    EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.0 200 OK\r\n") || absl::StartsWith(answer, "HTTP/1.1 200 OK\r\n"))
        << address << ": " << answer;
    EXPECT_THAT(answer, HasSubstr("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    size_t body = answer.find("\r\n\r\n");
    if (body == std::string::npos) return;
    text_ = answer.substr(body + 4);
    for (absl::string_view line : absl::StrSplit(text_, '\n', absl::SkipEmpty())) {
      if (absl::StartsWith(line, "#")) continue;
      size_t space = line.rfind(' ');
      double value = 0;
      EXPECT_TRUE(space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &value)) << line;
      samples_[std::string(line.substr(0, space))] = value;
    }
  }
  // The sample's value; a test failure (and -1) if it is absent.
  double operator[](const std::string& series) const {
    auto it = samples_.find(series);
    EXPECT_NE(it, samples_.end()) << series << " is not in:\n" << text_;
    return it == samples_.end() ? -1 : it->second;
  }

 private:
  std::string text_;
  std::map<std::string, double> samples_;
};

TEST(Metrics, ScrapedFromTheMasterAndANodeTheyCountADeployment) {
  ClusterOptions options;
  options.nodes = {{"2 GiB", "2", /*bridge=*/true}};
  options.node_args = {"--metrics=127.0.0.1:0"};
  options.master_args = {"--metrics=127.0.0.1:0"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  absl::StatusOr<std::string> node = cluster.node(0).WaitListening("metrics", absl::Seconds(30));
  ASSERT_TRUE(node.ok()) << node.status() << cluster.Describe();
  absl::StatusOr<std::string> master = cluster.master().WaitListening("metrics", absl::Seconds(30));
  ASSERT_TRUE(master.ok()) << master.status() << cluster.Describe();
  EXPECT_FALSE(absl::EndsWith(*node, ":0")) << "the port chosen is printed";

  Scrape node_before(*node);
  EXPECT_EQ(node_before["constellation_node_processes_spawned_total"], 0);
  EXPECT_EQ(node_before["constellation_node_processes_running"], 0);
  Scrape master_before(*master);
  EXPECT_EQ(master_before["constellation_master_nodes{state=\"up\"}"], 1);
  EXPECT_EQ(master_before["constellation_master_jobs{state=\"succeeded\"}"], 0);

  RunResult r = cluster.Deploy(ExamplePath("hello"), std::vector<std::string>{});
  ASSERT_EQ(r.exit.ToString(), "exit code 0") << r.err << cluster.Describe();

  Scrape node_after(*node);
  EXPECT_EQ(node_after["constellation_node_processes_spawned_total"], 2) << "the root and its child, on the only node";
  // A deployment's first spawned function on a node is executed; its zygote forks the later ones.
  EXPECT_EQ(node_after["constellation_node_processes_forked_total"], 0) << "hello spawns one child";
  EXPECT_EQ(node_after["constellation_node_spawn_latency_seconds_count"], 2);
  EXPECT_EQ(node_after["constellation_node_spawn_latency_seconds_bucket{le=\"+Inf\"}"], 2);
  EXPECT_GT(node_after["constellation_node_spawn_latency_seconds_sum"], 0);
  EXPECT_EQ(node_after["constellation_node_processes_failed_total{reason=\"exit_code\"}"], 0);
  EXPECT_EQ(node_after["constellation_node_processes_running"], 0);
  // hello's child started the deployment's zygote; the master's word at the job's end ended it.
  EXPECT_EQ(node_after["constellation_node_zygotes"], 0);
  // The master asked once; on this machine it then hands the node its own copy (Node.Adopt), no upload.
  EXPECT_EQ(node_after["constellation_node_binary_cache_misses_total"], 1);

  Scrape master_after(*master);
  EXPECT_EQ(master_after["constellation_master_jobs_submitted_total"], 1);
  EXPECT_EQ(master_after["constellation_master_jobs{state=\"succeeded\"}"], 1);
  EXPECT_EQ(master_after["constellation_master_jobs{state=\"running\"}"], 0);
  EXPECT_GT(master_after["constellation_master_uploaded_bytes_total"], 0);
  EXPECT_EQ(master_after["constellation_master_binary_cache_misses_total"], 1);
  EXPECT_GE(master_after["constellation_master_placement_wait_seconds_count"], 1);
  EXPECT_EQ(master_after["constellation_master_placement_queue_length"], 0);
  EXPECT_EQ(master_after["constellation_master_nodes_lost_total"], 0);

  // Anything but /metrics is a 404.
  EXPECT_TRUE(absl::StartsWith(HttpGet(*node, "/"), "HTTP/1.1 404 ")) << HttpGet(*node, "/");
}

TEST(Metrics, ABadAddressIsRefusedAtStart) {
  CommandResult r = RunCommand({DaemonPath(), "127.0.0.1:0", "--insecure", "--metrics=nonsense"}, absl::Seconds(30));
  EXPECT_EQ(r.code, 2) << r.output << r.error;
  EXPECT_THAT(r.error, HasSubstr("--metrics"));
}

}  // namespace
}  // namespace constellation::testing
