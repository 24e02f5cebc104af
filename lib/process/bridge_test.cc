#include "lib/process/bridge.h"

#include <signal.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::internal {
namespace {

// Records what the bridge asks to print, one string per call.
class RecordingFormatter : public OutputFormatter {
 public:
  void Spawn(const Pid& parent, const Pid& child) override { log.push_back(Name(parent) + " spawn " + Name(child)); }
  void Output(const Pid& pid, int fd, absl::string_view data) override {
    log.push_back(Name(pid) + " out" + std::to_string(fd) + " " + std::string(data));
  }
  void Eof(const Pid& pid, int fd) override { log.push_back(Name(pid) + " eof" + std::to_string(fd)); }
  void Exit(const Pid& pid, const pb::ExitEvent& exit) override { log.push_back(Name(pid) + " " + DescribeExit(exit)); }
  void Flush() override {}

  static std::string Name(const Pid& pid) { return "p" + std::to_string(pid.port()); }
  std::vector<std::string> log;
};

Pid P(uint16_t port) { return Pid::FromIpv4(0x7f000001, port, 1); }

pb::LocalMessage Hello(const Pid& pid) {
  pb::LocalMessage m;
  *m.mutable_hello()->mutable_pid() = ToProto(pid);
  m.mutable_hello()->set_monitor_os_pid(1000 + pid.port());
  return m;
}

pb::LocalMessage Spawn(const Pid& parent, const Pid& child) {
  pb::LocalMessage m;
  *m.mutable_event()->mutable_pid() = ToProto(parent);
  *m.mutable_event()->mutable_spawn()->mutable_child() = ToProto(child);
  m.mutable_event()->mutable_spawn()->set_os_pid(2000 + child.port());
  return m;
}

pb::LocalMessage Output(const Pid& pid, const std::string& data) {
  pb::LocalMessage m;
  *m.mutable_event()->mutable_pid() = ToProto(pid);
  m.mutable_event()->mutable_output()->set_fd(1);
  m.mutable_event()->mutable_output()->set_data(data);
  return m;
}

pb::LocalMessage Exit(const Pid& pid, int code) {
  pb::LocalMessage m;
  *m.mutable_event()->mutable_pid() = ToProto(pid);
  m.mutable_event()->mutable_exit()->set_code(code);
  return m;
}

class BridgeTest : public ::testing::Test {
 protected:
  void Send(int conn, const pb::LocalMessage& m) { ASSERT_TRUE(bridge_.OnMessage(conn, m).ok()); }
  RecordingFormatter out_;
  Bridge bridge_{&out_};
};

TEST_F(BridgeTest, RootAloneExitCode) {
  bridge_.AddRoot(P(1));
  Send(10, Hello(P(1)));
  Send(10, Output(P(1), "hi"));
  EXPECT_FALSE(bridge_.Done());
  Send(10, Exit(P(1), 3));
  EXPECT_TRUE(bridge_.Done());
  EXPECT_EQ(bridge_.exit_code(), 3);
  EXPECT_EQ(out_.log, (std::vector<std::string>{"p1 out1 hi", "p1 exited: 3"}));
}

TEST_F(BridgeTest, ChildConnectingEarlyIsHeldUntilItsSpawnLine) {
  bridge_.AddRoot(P(1));
  Send(10, Hello(P(1)));
  // The child's connection is read before the parent's spawn event.
  Send(11, Hello(P(2)));
  EXPECT_TRUE(bridge_.IsHeld(11));
  Send(10, Spawn(P(1), P(2)));
  EXPECT_FALSE(bridge_.IsHeld(11));
  EXPECT_EQ(bridge_.TakeReleased(), std::vector<int>{11});
  Send(11, Output(P(2), "child"));
  EXPECT_EQ(out_.log, (std::vector<std::string>{"p1 spawn p2", "p2 out1 child"}));
}

// What the loop must take before it sleeps: a child's whole life (hello to
// exit) can be read in one go outside the loop's turn, when the bridge looks
// for a monitor that already ended; its exit then waits only in the bridge.
TEST_F(BridgeTest, PendingUntilExitsReleasesAndAnnouncementsAreTaken) {
  bridge_.AddRoot(P(1));
  Send(10, Hello(P(1)));
  EXPECT_FALSE(bridge_.HasPending());
  bridge_.Spawned(P(1), P(2), 3000);
  EXPECT_TRUE(bridge_.HasPending());  // announced
  EXPECT_EQ(bridge_.TakeAnnounced().size(), 1u);
  EXPECT_FALSE(bridge_.HasPending());
  Send(11, Hello(P(2)));
  Send(11, Exit(P(2), 0));
  EXPECT_TRUE(bridge_.HasPending());  // exited
  EXPECT_EQ(bridge_.TakeExited(), std::vector<Pid>{P(2)});
  EXPECT_FALSE(bridge_.HasPending());
  Send(12, Hello(P(3)));  // before its spawn line: held
  bridge_.Spawned(P(1), P(3), 3001);
  bridge_.TakeAnnounced();
  EXPECT_TRUE(bridge_.HasPending());  // released
  EXPECT_EQ(bridge_.TakeReleased(), std::vector<int>{12});
  EXPECT_FALSE(bridge_.HasPending());
}

TEST_F(BridgeTest, ExitCodeIsTheFirstFailure) {
  bridge_.AddRoot(P(1));
  Send(10, Hello(P(1)));
  Send(10, Spawn(P(1), P(2)));
  Send(10, Spawn(P(1), P(3)));
  Send(11, Hello(P(2)));
  Send(12, Hello(P(3)));
  Send(10, Exit(P(1), 0));
  pb::LocalMessage killed = Exit(P(3), 0);
  killed.mutable_event()->mutable_exit()->set_signal(SIGABRT);
  Send(12, killed);
  EXPECT_FALSE(bridge_.Done()) << "p2 is still running";
  Send(11, Exit(P(2), 1));
  EXPECT_TRUE(bridge_.Done());
  EXPECT_EQ(bridge_.exit_code(), 128 + SIGABRT);
}

TEST_F(BridgeTest, ParentExitingFirstStillWaitsForItsChild) {
  bridge_.AddRoot(P(1));
  Send(10, Hello(P(1)));
  Send(10, Spawn(P(1), P(2)));
  Send(10, Exit(P(1), 0));
  EXPECT_FALSE(bridge_.Done());
  auto announced = bridge_.TakeAnnounced();
  ASSERT_EQ(announced.size(), 1u);
  EXPECT_EQ(announced[0].second, 2002);
  Send(11, Hello(P(2)));
  Send(11, Exit(P(2), 0));
  EXPECT_TRUE(bridge_.Done());
  EXPECT_EQ(bridge_.exit_code(), 0);
}

TEST_F(BridgeTest, ClosedWithoutExitIsReportedAsKilled) {
  bridge_.AddRoot(P(1));
  Send(10, Hello(P(1)));
  bridge_.OnClose(10);
  EXPECT_TRUE(bridge_.Done());
  EXPECT_EQ(bridge_.exit_code(), 128 + SIGKILL);
}

TEST_F(BridgeTest, NeverConnectedIsReported) {
  bridge_.AddRoot(P(1));
  Send(10, Hello(P(1)));
  Send(10, Spawn(P(1), P(2)));
  Send(10, Exit(P(1), 0));
  bridge_.OnNeverConnected(P(2));
  EXPECT_TRUE(bridge_.Done());
  EXPECT_EQ(bridge_.exit_code(), 127);
}

TEST_F(BridgeTest, ProtocolViolationsAreErrorsThatTouchNothingElse) {
  bridge_.AddRoot(P(1));
  Send(10, Hello(P(1)));
  EXPECT_FALSE(bridge_.OnMessage(20, Output(P(1), "no hello first")).ok());
  Send(21, Hello(P(5)));  // unannounced: held
  EXPECT_FALSE(bridge_.OnMessage(22, Hello(P(5))).ok()) << "a second connection for one pid";
  EXPECT_FALSE(bridge_.OnMessage(10, Output(P(2), "speaking for another")).ok());
  pb::LocalMessage bad_pid = Hello(P(6));
  bad_pid.mutable_hello()->mutable_pid()->set_addr("short");
  EXPECT_FALSE(bridge_.OnMessage(23, bad_pid).ok());
  Send(10, Output(P(1), "still fine"));
  Send(10, Exit(P(1), 0));
  EXPECT_TRUE(bridge_.Done());
  EXPECT_EQ(out_.log, (std::vector<std::string>{"p1 out1 still fine", "p1 exited"}));
}

TEST(OutputFormatTest, ParseFormat) {
  EXPECT_EQ(*ParseOutputFormat(nullptr), OutputFormat::kHuman);
  EXPECT_EQ(*ParseOutputFormat(""), OutputFormat::kHuman);
  EXPECT_EQ(*ParseOutputFormat("human"), OutputFormat::kHuman);
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  auto bad = ParseOutputFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"json\""), std::string::npos);
}

// What a formatter writes to its stdout and stderr streams.
std::pair<std::string, std::string> CaptureBoth(const std::function<void(OutputFormatter&)>& body, bool json) {
  char *out_buf = nullptr, *err_buf = nullptr;
  size_t out_len = 0, err_len = 0;
  FILE* out = open_memstream(&out_buf, &out_len);
  FILE* err = open_memstream(&err_buf, &err_len);
  {
    auto formatter = json ? MakeJsonFormatter(out) : MakeHumanFormatter(out, err, false);
    body(*formatter);
    formatter->Flush();
  }
  fclose(out);
  fclose(err);
  std::pair<std::string, std::string> result{std::string(out_buf, out_len), std::string(err_buf, err_len)};
  free(out_buf);
  free(err_buf);
  return result;
}

std::string Capture(const std::function<void(OutputFormatter&)>& body, bool json) {
  return CaptureBoth(body, json).first;
}

TEST(OutputFormatTest, HumanStderrStaysOnStderr) {
  Pid a = P(1);
  auto [out, err] = CaptureBoth(
      [&](OutputFormatter& f) {
        f.Output(a, 1, "to stdout\n");
        f.Output(a, 2, "to stderr\n");
      },
      false);
  EXPECT_EQ(out, a.to_string() + ":\n   to stdout\n");
  EXPECT_EQ(err, a.to_string() + ":\n   to stderr\n");
}

TEST(OutputFormatTest, HumanLayout) {
  Pid a = P(1), b = P(2);
  std::string text = Capture(
      [&](OutputFormatter& f) {
        f.Output(a, 1, "hello worker 3!\n");
        f.Spawn(a, b);
        f.Output(a, 1, "partial");
        f.Output(b, 1, "child\n");
        pb::ExitEvent ok;
        ok.set_code(0);
        f.Exit(a, ok);
        pb::ExitEvent failed;
        failed.set_code(1);
        f.Exit(b, failed);
      },
      false);
  std::string A = a.to_string(), B = b.to_string();
  EXPECT_EQ(text, A + ":\n   hello worker 3!\n   spawned: " + B + "\n   partial\n" + B + ":\n   child\n" + A +
                      ":\n   exited\n" + B + ":\n   exited: 1\n");
}

TEST(OutputFormatTest, JsonLines) {
  Pid a = P(1), b = P(2);
  std::string text = Capture(
      [&](OutputFormatter& f) {
        f.Spawn(a, b);
        f.Output(b, 2, std::string("\0\xff", 2));
        f.Eof(b, 2);
        pb::ExitEvent sig;
        sig.set_signal(SIGABRT);
        f.Exit(b, sig);
      },
      true);
  std::string A = a.to_string(), B = b.to_string();
  EXPECT_EQ(text, "{\"event\":\"spawn\",\"pid\":\"" + A + "\",\"child\":\"" + B + "\"}\n" +
                      "{\"event\":\"output\",\"pid\":\"" + B + "\",\"fd\":2,\"data\":\"AP8=\"}\n" +
                      "{\"event\":\"output\",\"pid\":\"" + B + "\",\"fd\":2,\"eof\":true}\n" +
                      "{\"event\":\"exit\",\"pid\":\"" + B + "\",\"signal\":\"SIGABRT\"}\n");
}

// The node daemon's use: announced without a spawn line, its monitor known
// later, removed once its exit is reported.
TEST_F(BridgeTest, AnnouncedProcessesAreTrackedAndRemoved) {
  bridge_.Announce(P(5));
  EXPECT_EQ(bridge_.live(), 1);
  bridge_.SetMonitor(P(5), 77);
  Send(20, Hello(P(5)));  // claims monitor 1005: the known one stays
  EXPECT_EQ(bridge_.MonitorOsPid(P(5)), 77);
  EXPECT_EQ(bridge_.ConnOf(P(5)), 20);
  pb::LocalMessage started;
  started.mutable_child_started()->set_os_pid(78);
  Send(20, started);
  EXPECT_EQ(bridge_.OsPid(P(5)), 78);
  Send(20, Output(P(5), "x"));
  Send(20, Exit(P(5), 0));
  EXPECT_EQ(bridge_.TakeExited(), std::vector<Pid>{P(5)});
  bridge_.Remove(P(5));
  EXPECT_EQ(bridge_.live(), 0);
  EXPECT_FALSE(bridge_.PidOf(20).has_value());
  bridge_.OnClose(20);  // after Remove: nothing more is reported
  EXPECT_EQ(out_.log, (std::vector<std::string>{"p5 out1 x", "p5 exited"}));
  EXPECT_TRUE(bridge_.TakeAnnounced().empty());
}

TEST_F(BridgeTest, RemovingALaunchThatFailedEndsIt) {
  bridge_.Announce(P(6));
  bridge_.Remove(P(6));
  EXPECT_TRUE(bridge_.Done());
  EXPECT_TRUE(out_.log.empty());
}

}  // namespace
}  // namespace constellation::internal
