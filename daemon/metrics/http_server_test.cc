#include "daemon/metrics/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "gtest/gtest.h"

namespace constellation::daemon::metrics {
namespace {

// Sends `request` to 127.0.0.1:`port` and reads the answer until the server
// closes the connection (a 10 s receive timeout guards against a hang;
// `*closed` says whether the server closed it, rather than the guard).
std::string Exchange(const std::string& address, const std::string& request, bool* closed = nullptr) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << address;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval guard{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    close(fd);
    ADD_FAILURE() << "connect to " << address << " failed";
    return "";
  }
  std::string_view left = request;
  while (!left.empty()) {
    ssize_t n = send(fd, left.data(), left.size(), MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may refuse before reading everything
    left.remove_prefix(n);
  }
  std::string answer;
  char buf[4096];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (closed != nullptr) *closed = n == 0 || (n < 0 && errno == ECONNRESET);
    if (n <= 0) break;
    answer.append(buf, n);
  }
  close(fd);
  return answer;
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddCounter("t_spawned_total", "Spawned.").Increment(7);
    absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start("127.0.0.1:0", &registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  Registry registry_;
  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, ListensOnTheChosenPort) {
  EXPECT_TRUE(absl::StartsWith(server_->address(), "127.0.0.1:"));
  EXPECT_FALSE(absl::EndsWith(server_->address(), ":0"));
}

TEST_F(MetricsServerTest, GetMetricsAnswersTheTextFormat) {
  std::string answer = Exchange(server_->address(), "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.0 200 OK\r\n") || absl::StartsWith(answer, "HTTP/1.1 200 OK\r\n"))
      << answer;
  EXPECT_TRUE(absl::StrContains(answer, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n")) << answer;
  EXPECT_TRUE(absl::EndsWith(answer, "\r\n\r\n" + registry_.Render())) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "\nt_spawned_total 7\n")) << answer;
}

TEST_F(MetricsServerTest, HttpOneOneAndAQueryString) {
  std::string answer =
      Exchange(server_->address(), "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 200 OK\r\n")) << answer;
}

TEST_F(MetricsServerTest, OtherPathsAre404) {
  for (const char* path : {"/", "/metrics/", "/metricsx", "/health", "http://x/y"}) {
    std::string answer = Exchange(server_->address(), std::string("GET ") + path + " HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 404 ")) << path << ": " << answer;
  }
}

TEST_F(MetricsServerTest, OtherMethodsAreRefused) {
  std::string answer = Exchange(server_->address(), "POST /metrics HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 501 ")) << answer;  // libevent's answer to a method not allowed
  EXPECT_FALSE(absl::StrContains(answer, "t_spawned_total")) << answer;
}

TEST_F(MetricsServerTest, OversizedHeadersAreRefused) {
  std::string huge =
      "GET /metrics HTTP/1.0\r\nX-Filler: " + std::string(4 * MetricsServer::kMaxHeaderBytes, 'a') + "\r\n\r\n";
  std::string answer = Exchange(server_->address(), huge);
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 400 ")) << answer.substr(0, 200);
  EXPECT_FALSE(absl::StrContains(answer, "t_spawned_total")) << answer.substr(0, 200);
  // And it still serves the next one.
  EXPECT_TRUE(absl::StrContains(Exchange(server_->address(), "GET /metrics HTTP/1.0\r\n\r\n"), " 200 OK"));
}

TEST_F(MetricsServerTest, ARequestWithABodyIsRefused) {
  std::string answer =
      Exchange(server_->address(), "GET /metrics HTTP/1.0\r\nContent-Length: 100000\r\n\r\n" + std::string(100, 'b'));
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 413 ")) << answer;
}

TEST_F(MetricsServerTest, GarbageIsRefused) {
  std::string answer = Exchange(server_->address(), std::string("\x01\x02 nonsense\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 400 ")) << answer;
}

TEST(MetricsServerTimeoutTest, AnIdleConnectionIsClosed) {
  Registry registry;
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", &registry, {.timeout = absl::Milliseconds(100)});
  ASSERT_TRUE(server.ok()) << server.status();
  // Half a request, then nothing: the server closes the connection (Exchange
  // returns at its close; its own guard would fail the test after 10 s).
  bool closed = false;
  std::string answer = Exchange((*server)->address(), "GET /metrics HTTP/1.0\r\n", &closed);
  EXPECT_FALSE(absl::StrContains(answer, " 200 ")) << answer;
  EXPECT_TRUE(closed) << "the test's guard ended the wait, not the server";
}

TEST(MetricsServerStartTest, BadAddressesAreErrors) {
  Registry registry;
  for (const char* bad : {"", "9464", ":9464", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:x"}) {
    EXPECT_FALSE(MetricsServer::Start(bad, &registry).ok()) << bad;
  }
}

TEST(MetricsServerStartTest, ATakenPortIsAnError) {
  Registry registry;
  absl::StatusOr<std::unique_ptr<MetricsServer>> first = MetricsServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<MetricsServer>> second = MetricsServer::Start((*first)->address(), &registry);
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace constellation::daemon::metrics
