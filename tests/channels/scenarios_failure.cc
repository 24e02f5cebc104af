// Channel scenarios (scenarios.h) of failures: a peer killed by SIGKILL,
// sending to an exited child, misuse, and a scenario that never finishes (the
// hang guard's test).
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "constellation/constellation.h"
#include "tests/channels/scenarios.h"
#include "tests/channels/scenarios_util.h"

using namespace constellation;

namespace channel_scenarios {
namespace {

// ---- sigkill: recv from a child killed by SIGKILL ----------------------------------------

void KillSelfChild(Pid parent) {
  Sender<int> out(parent);
  Receiver<int> go(parent);
  for (int i = 0; i < 100; ++i) ExpectOk(out.send(i), "send");
  Get(go.recv(), "recv go");
  raise(SIGKILL);
}

int RecvAfterSigkill() {
  Pid child = Spawn(KillSelfChild);
  {
    Receiver<int> in(child);
    Sender<int> go(child);
    for (int i = 0; i < 100; ++i) Expect(Get(in.recv(), "recv") == i, absl::StrCat("value ", i));
    ExpectOk(go.send(1), "send go");
    ExpectGone(in, "recv from the killed child");  // blocked here when the child dies
    Expect(absl::IsUnavailable(in.try_recv().status()),
           "try_recv after the kill: " + in.try_recv().status().ToString());
    absl::Status sent = go.send(2);
    Expect(absl::IsUnavailable(sent), "send to the killed child: " + sent.ToString());
  }
  // New channels to a process known to be gone fail at once.
  absl::Status sent = Sender<std::string>(child).send("late");
  Expect(absl::IsUnavailable(sent), "send on a new Sender to the killed child: " + sent.ToString());
  Receiver<std::string> late(child);
  ExpectGone(late, "recv on a new Receiver from the killed child");
  Report("sigkill: recv and send report kUnavailable");
  return 0;
}

// The child streams without end; the parent SIGKILLs it mid-stream.
void StreamForeverChild(Pid parent) {
  Sender<int64_t> out(parent);
  ExpectOk(out.send(getpid()), "send os pid");
  for (int64_t i = 0;; ++i) ExpectOk(out.send(i), "send");
}

int SigkillStreaming() {
  Pid child = Spawn(StreamForeverChild);
  Receiver<int64_t> in(child);
  pid_t os_pid = static_cast<pid_t>(Get(in.recv(), "recv os pid"));
  for (int64_t i = 0; i < 10000; ++i) Expect(Get(in.recv(), "recv") == i, absl::StrCat("value ", i));
  Expect(kill(os_pid, SIGKILL) == 0, absl::StrCat("kill ", os_pid, ": ", std::strerror(errno)));
  int64_t next = 10000;
  while (true) {
    absl::StatusOr<int64_t> v = in.recv();
    if (!v.ok()) {
      Expect(absl::IsUnavailable(v.status()), "recv after the kill: " + v.status().ToString());
      break;
    }
    Expect(*v == next, absl::StrCat("value ", next, " is ", *v));
    ++next;
  }
  Report(absl::StrCat("sigkill mid-stream: ", next, " values in order, then kUnavailable"));
  return 0;
}

// ---- send_to_exited: sending to a child that has returned ----------------------------------

void ReadOneChild(Pid parent) {
  Receiver<int64_t> in(parent);
  Get(in.recv(), "recv one");
}

int SendToExited() {
  Pid child = Spawn(ReadOneChild);
  int64_t sent = 0;
  absl::Status status;
  {
    Sender<int64_t> out(child);
    absl::Time limit = absl::Now() + absl::Seconds(30);
    while (true) {
      status = out.send(sent);
      if (!status.ok()) break;
      ++sent;
      Expect(sent < 50'000'000 && absl::Now() < limit, absl::StrCat("send kept succeeding after ", sent, " values"));
    }
    Expect(absl::IsUnavailable(status), "send to the exited child: " + status.ToString());
    absl::Status again = out.send(0);
    Expect(absl::IsUnavailable(again), "send again: " + again.ToString());
    absl::Status try_again = out.try_send(0);
    Expect(absl::IsUnavailable(try_again), "try_send: " + try_again.ToString());
  }
  absl::Status fresh = Sender<std::string>(child).send("x");
  Expect(absl::IsUnavailable(fresh), "send on a new Sender: " + fresh.ToString());
  Receiver<int> in(child);
  ExpectGone(in, "recv from the exited child");
  Report(absl::StrCat("send to exited child failed with kUnavailable after ", sent, " values"));
  return 0;
}

// ---- misuse: channels to pid() itself, second live channels ------------------------------

void SelfReceiverChild(Pid parent) { Receiver<std::string> r(pid()); }

void SecondSenderChild(Pid parent) {
  Sender<int> first(parent);
  Sender<std::string> second(parent);
}

void WaitForParentChild(Pid parent) {
  Receiver<int> in(parent);
  ExpectGone(in, "recv from the aborted parent");
  Report("child saw the parent go");
}

int Misuse(const std::string& which) {
  if (which == "self_sender_root") {
    Sender<int> s(pid());
    Fail("Sender<int>(pid()) did not abort");
  }
  if (which == "self_receiver_child" || which == "second_sender_child") {
    Pid child = Spawn(which == "self_receiver_child" ? SelfReceiverChild : SecondSenderChild);
    Receiver<int> in(child);
    ExpectGone(in, "recv from the aborted child");
    Report("parent saw the child go");
    return 0;
  }
  if (which == "second_receiver_root") {
    Pid child = Spawn(WaitForParentChild);
    Receiver<int> first(child);
    Receiver<int> second(child);
    Fail("a second Receiver<int> to the same pid did not abort");
  }
  Fail("unknown misuse case " + which);
}

// ---- hang: never finishes (the harness's hang guard test) ---------------------------------

void HangChild(Pid parent) {
  Report(absl::StrCat("hanging os pid ", getpid()));
  Receiver<int> in(parent);
  Get(in.recv(), "hang child recv");  // the parent never sends and never exits
}

int Hang() {
  Pid child = Spawn(HangChild);
  Report(absl::StrCat("hanging os pid ", getpid()));
  Receiver<int> in(child);
  Get(in.recv(), "hang recv");  // the child never sends
  return 0;
}

}  // namespace

int RunFailureScenario(const std::string& name, int argc, char** argv) {
  if (name == "sigkill") return RecvAfterSigkill();
  if (name == "sigkill_streaming") return SigkillStreaming();
  if (name == "send_to_exited") return SendToExited();
  if (name == "misuse") return Misuse(argc > 2 ? argv[2] : "");
  if (name == "hang") return Hang();
  return kUnknownScenario;
}

}  // namespace channel_scenarios
