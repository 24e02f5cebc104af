// Channel scenarios (scenarios.h), the basics: send/recv both ways,
// ping-pong, swapped types, a stream of optional<T>, select over children,
// try_/deadline variants.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "constellation/constellation.h"
#include "tests/channels/scenarios.h"
#include "tests/channels/scenarios_util.h"

using namespace constellation;

namespace channel_scenarios {
namespace {

// ---- send_recv: values both ways between parent and child ----------------------------

void SendRecvChild(Pid parent) {
  Receiver<std::string> in(parent);
  Sender<std::string> out(parent);
  for (int i = 0; i < 3; ++i) {
    std::string s = Get(in.recv(), "child recv");
    ExpectOk(out.send(absl::StrCat("echo ", s.size(), ":", s)), "child send");
  }
  Report("child echoed 3");
}

int SendRecv() {
  Pid child = Spawn(SendRecvChild);
  Sender<std::string> out(child);
  Receiver<std::string> in(child);
  std::vector<std::string> values = {"hello", "", std::string(100000, 'x')};
  for (const std::string& v : values) ExpectOk(out.send(v), "send");
  for (const std::string& v : values) {
    std::string got = Get(in.recv(), "recv");
    Expect(got == absl::StrCat("echo ", v.size(), ":", v), "echo of a " + std::to_string(v.size()) + "-byte value");
  }
  ExpectGone(in, "recv after the child returned");
  Report("parent got 3 echoes");
  return 0;
}

// ---- ping_pong: 1000 round trips --------------------------------------------------------

void PingPongChild(Pid parent) {
  Receiver<int64_t> in(parent);
  Sender<int64_t> out(parent);
  int64_t count = 0;
  while (true) {
    int64_t v = Get(in.recv(), "child recv");
    if (v < 0) break;
    ExpectOk(out.send(v + 1), "child send");
    ++count;
  }
  Report(absl::StrCat("child answered ", count));
}

int PingPong() {
  Pid child = Spawn(PingPongChild);
  Sender<int64_t> out(child);
  Receiver<int64_t> in(child);
  absl::Time start = absl::Now();
  for (int64_t i = 0; i < 1000; ++i) {
    ExpectOk(out.send(2 * i), "send");
    int64_t got = Get(in.recv(), "recv");
    Expect(got == 2 * i + 1, absl::StrCat("round trip ", i, ": got ", got));
  }
  absl::Duration took = absl::Now() - start;
  ExpectOk(out.send(-1), "send stop");
  ExpectGone(in, "recv after the child returned");
  Report(absl::StrCat("ping_pong 1000 round trips, ", absl::ToDoubleMicroseconds(took) / 1000, " us each"));
  return 0;
}

// ---- swap_types: drop channels and re-create them to the same peer with other types -----

using Doubles = std::vector<double>;

// `pause`: sleep this long (ms) with no channel to the peer, so the idle
// teardown (2 s) closes the connection and the next channel dials a new one.
void IdlePause(int pause_ms) {
  if (pause_ms > 0) absl::SleepFor(absl::Milliseconds(pause_ms));  // deliberately idle: not waiting for anything
}

void SwapChild(Pid parent, int pause_ms) {
  {
    Sender<int> s(parent);
    for (int v : {1, 2, 3}) ExpectOk(s.send(v), "send int");
  }
  {
    Receiver<std::string> r(parent);
    Expect(Get(r.recv(), "recv string") == "a", "string a");
    Expect(Get(r.recv(), "recv string") == "b", "string b");
  }
  IdlePause(pause_ms);
  {
    Sender<std::string> s(parent);
    ExpectOk(s.send("x"), "send string");
    ExpectOk(s.send("y"), "send string");
  }
  {
    Receiver<int> r(parent);
    Expect(Get(r.recv(), "recv int") == 10, "int 10");
    Expect(Get(r.recv(), "recv int") == 20, "int 20");
  }
  {
    Sender<Doubles> s(parent);
    ExpectOk(s.send(Doubles{1.5, -2.5}), "send doubles");
  }
  // A value of the wrong type, then a right one on a new Sender.
  { ExpectOk(Sender<std::string>(parent).send("oops"), "send mismatched string"); }
  { ExpectOk(Sender<int>(parent).send(7), "send int after the mismatch"); }
  Report("child swapped types");
}

int SwapTypes(int pause_ms) {
  Pid child = Spawn(SwapChild, pause_ms);
  {
    Receiver<int> r(child);
    Expect(Get(r.recv(), "recv int") == 1, "int 1");
  }
  {
    // Values already received for a dropped Receiver go to the next one from that pid.
    Receiver<int> r(child);
    for (int v : {2, 3}) Expect(Get(r.recv(), "recv int on a new Receiver") == v, absl::StrCat("int ", v));
  }
  {
    Sender<std::string> s(child);
    ExpectOk(s.send("a"), "send a");
    ExpectOk(s.send("b"), "send b");
  }
  IdlePause(pause_ms);
  {
    Receiver<std::string> r(child);
    Expect(Get(r.recv(), "recv string") == "x", "string x");
    Expect(Get(r.recv(), "recv string") == "y", "string y");
  }
  {
    Sender<int> s(child);
    ExpectOk(s.send(10), "send 10");
    ExpectOk(s.send(20), "send 20");
  }
  {
    Receiver<Doubles> r(child);
    Expect(Get(r.recv(), "recv doubles") == Doubles({1.5, -2.5}), "doubles");
  }
  {
    Receiver<int> r(child);
    absl::StatusOr<int> bad = r.recv();
    Expect(!bad.ok(), absl::StrCat("Receiver<int> accepted a value a Sender<std::string> sent: ", bad.ok() ? *bad : 0));
    Expect(absl::IsInvalidArgument(bad.status()), "mismatch is kInvalidArgument: " + bad.status().ToString());
    std::string message(bad.status().message());
    Report("mismatch " + message);
    std::string string_name(type_name<std::string>());
    Expect(absl::StrContains(message, "Receiver<int>"), "the mismatch error names Receiver<int>: " + message);
    Expect(absl::StrContains(message, "Sender<" + string_name + ">"),
           "the mismatch error names Sender<" + string_name + ">: " + message);
    Expect(Get(r.recv(), "recv after the mismatch") == 7, "the value after the mismatch is 7");
    ExpectGone(r, "recv after the child returned");
  }
  Report("parent swapped types");
  return 0;
}

// ---- optional_stream: a stream of optional<T> ended by nullopt -------------------------

constexpr int kOptionalCount = 500;

std::optional<std::string> OptionalValue(int i) {
  if (i % 3 == 0) return std::string();  // an empty string is a value, not the end
  return Payload(i, static_cast<size_t>(i % 97));
}

void OptionalChild(Pid parent) {
  {
    Sender<std::optional<std::string>> s(parent);
    for (int i = 0; i < kOptionalCount; ++i) ExpectOk(s.send(OptionalValue(i)), "send");
    ExpectOk(s.send(std::nullopt), "send nullopt");
  }
  {
    Sender<std::optional<int>> s(parent);
    for (int v : {0, 0, -1, 5}) ExpectOk(s.send(v), "send optional<int>");
    ExpectOk(s.send(std::nullopt), "send nullopt");
  }
}

int OptionalStream() {
  Pid child = Spawn(OptionalChild);
  int count = 0;
  {
    Receiver<std::optional<std::string>> r(child);
    while (true) {
      std::optional<std::string> v = Get(r.recv(), "recv");
      if (!v.has_value()) break;
      Expect(count < kOptionalCount, "more values than were sent before nullopt");
      Expect(*v == *OptionalValue(count), absl::StrCat("value ", count, " is \"", v->substr(0, 20), "\""));
      ++count;
    }
    Expect(count == kOptionalCount, absl::StrCat("got ", count, " values before nullopt"));
  }
  std::vector<int> ints;
  {
    Receiver<std::optional<int>> r(child);
    while (true) {
      std::optional<int> v = Get(r.recv(), "recv optional<int>");
      if (!v.has_value()) break;
      ints.push_back(*v);
    }
    Expect(ints == std::vector<int>({0, 0, -1, 5}), "optional<int> values");
    ExpectGone(r, "recv after the child returned");
  }
  Report(absl::StrCat("optional stream of ", count, " strings and ", ints.size(), " ints ended by nullopt"));
  return 0;
}

// ---- select over several children, with a timeout --------------------------------------

constexpr int kSelectChildren = 3;
constexpr int kSelectValues = 5;

void SelectChild(Pid parent, int index) {
  Receiver<int> go(parent);
  Get(go.recv(), "recv go");
  Sender<int> out(parent);
  for (int k = 0; k < kSelectValues; ++k) ExpectOk(out.send(index * 100 + k), "send");
}  // exits at once

int Select() {
  std::vector<Pid> pids;
  for (int i = 0; i < kSelectChildren; ++i) pids.push_back(Spawn(SelectChild, i));
  std::vector<Receiver<int>> in;
  std::vector<Sender<int>> go;
  for (const Pid& p : pids) {
    in.emplace_back(p);
    go.emplace_back(p);
  }
  std::vector<std::vector<int>> values(kSelectChildren);
  std::vector<std::optional<absl::Status>> errors(kSelectChildren);
  int callbacks = 0, callback_index = -1;
  auto on_value = [&](int i) {
    return [&, i](absl::StatusOr<int> v) {
      ++callbacks;
      callback_index = i;
      if (v.ok()) {
        Expect(!errors[i].has_value(), absl::StrCat("child ", i, ": a value after its error"));
        values[i].push_back(*v);
      } else if (!errors[i].has_value()) {
        errors[i] = v.status();
      }
    };
  };

  // 1. Nothing can be ready (every child waits for its go): the timeout fires, no callback runs.
  absl::Time start = absl::Now();
  absl::StatusOr<size_t> r = select(
      {on_recv(in[0], on_value(0)), on_recv(in[1], on_value(1)), on_recv(in[2], on_value(2))}, absl::Milliseconds(200));
  absl::Duration waited = absl::Now() - start;
  Expect(!r.ok() && absl::IsDeadlineExceeded(r.status()),
         "select before any child sent: " + (r.ok() ? absl::StrCat("case ", *r) : r.status().ToString()));
  Expect(callbacks == 0, "a callback ran on timeout");
  Expect(waited >= absl::Milliseconds(190), absl::StrCat("select timed out after only ", absl::FormatDuration(waited)));
  Report(absl::StrCat("select timeout after ", absl::ToInt64Milliseconds(waited), " ms"));

  // 2. Send the go values through select over three send cases: each call performs exactly one.
  std::vector<int> go_sent(kSelectChildren, 0);
  for (int round = 0; round < kSelectChildren; ++round) {
    int ran = 0, ran_index = -1;
    auto on_sent = [&](int i) {
      return [&, i](absl::Status s) {
        ExpectOk(s, absl::StrCat("select send go to child ", i));
        ++ran;
        ran_index = i;
        ++go_sent[i];
      };
    };
    absl::StatusOr<size_t> which =
        select({on_send(go[0], 1, on_sent(0)), on_send(go[1], 1, on_sent(1)), on_send(go[2], 1, on_sent(2))});
    Expect(which.ok(), "select over sends: " + which.status().ToString());
    Expect(ran == 1, absl::StrCat("select over sends ran ", ran, " callbacks"));
    Expect(static_cast<int>(*which) == ran_index,
           absl::StrCat("select returned ", *which, " but case ", ran_index, " ran"));
  }
  for (int i = 0; i < kSelectChildren; ++i) {
    if (go_sent[i] == 0) ExpectOk(go[i].send(1), "send go");
  }

  // 3. Collect every value and then every child's exit, one select at a time,
  // over the receivers that have not reported their child's exit yet (a
  // receiver whose child is gone is always ready: it would win every round).
  int rounds = 0;
  while (true) {
    std::vector<int> open;
    for (int i = 0; i < kSelectChildren; ++i) {
      if (!errors[i].has_value()) open.push_back(i);
    }
    if (open.empty()) break;
    Expect(++rounds < 1000, "select never reported every child's exit");
    callbacks = 0;
    absl::Duration t = absl::Seconds(30);
    absl::StatusOr<size_t> which;
    if (open.size() == 3) {
      which = select({on_recv(in[open[0]], on_value(open[0])), on_recv(in[open[1]], on_value(open[1])),
                      on_recv(in[open[2]], on_value(open[2]))},
                     t);
    } else if (open.size() == 2) {
      which = select({on_recv(in[open[0]], on_value(open[0])), on_recv(in[open[1]], on_value(open[1]))}, t);
    } else {
      which = select({on_recv(in[open[0]], on_value(open[0]))}, t);
    }
    Expect(which.ok(), "select over receivers: " + which.status().ToString());
    Expect(*which < open.size(), absl::StrCat("select returned case ", *which, " of ", open.size()));
    Expect(callbacks == 1, absl::StrCat("select ran ", callbacks, " callbacks"));
    Expect(open[*which] == callback_index,
           absl::StrCat("select returned case ", *which, " but the callback of case ", callback_index, " ran"));
  }
  for (int i = 0; i < kSelectChildren; ++i) {
    std::vector<int> want;
    for (int k = 0; k < kSelectValues; ++k) want.push_back(i * 100 + k);
    Expect(values[i] == want, absl::StrCat("child ", i, ": got ", values[i].size(), " values, not in order or wrong"));
    Expect(absl::IsUnavailable(*errors[i]), absl::StrCat("child ", i, " ended with ", errors[i]->ToString()));
  }
  Report(absl::StrCat("select collected ", kSelectChildren * kSelectValues, " values and ", kSelectChildren,
                      " exits in ", rounds, " rounds"));
  return 0;
}

// ---- try_recv, try_send, deadlines ------------------------------------------------------

void TryChild(Pid parent) {
  Receiver<int> go(parent);
  Sender<int> out(parent);
  Expect(Get(go.recv(), "recv go 1") == 1, "go 1");
  ExpectOk(out.send(42), "send 42");
  Expect(Get(go.recv(), "recv go 2") == 2, "go 2");
  ExpectOk(out.send(43), "send 43");
}

int TryRecv() {
  Pid child = Spawn(TryChild);
  Receiver<int> in(child);
  Sender<int> go(child);
  absl::StatusOr<int> v = in.try_recv();
  Expect(absl::IsDeadlineExceeded(v.status()), "try_recv with nothing sent: " + v.status().ToString());

  absl::Time start = absl::Now();
  v = in.recv_for(absl::Milliseconds(200));
  absl::Duration waited = absl::Now() - start;
  Expect(absl::IsDeadlineExceeded(v.status()), "recv_for with nothing sent: " + v.status().ToString());
  Expect(waited >= absl::Milliseconds(190), "recv_for returned after only " + absl::FormatDuration(waited));

  start = absl::Now();
  v = in.recv_until(start + absl::Milliseconds(100));
  waited = absl::Now() - start;
  Expect(absl::IsDeadlineExceeded(v.status()), "recv_until with nothing sent: " + v.status().ToString());
  Expect(waited >= absl::Milliseconds(90), "recv_until returned after only " + absl::FormatDuration(waited));

  ExpectOk(go.try_send(1), "try_send go 1");
  Expect(Get(in.recv_for(absl::Seconds(30)), "recv_for 42") == 42, "42");
  v = in.try_recv();
  Expect(absl::IsDeadlineExceeded(v.status()), "try_recv before go 2: " + v.status().ToString());
  ExpectOk(go.send_for(2, absl::Seconds(5)), "send_for go 2");
  Expect(Get(in.recv_until(absl::Now() + absl::Seconds(30)), "recv_until 43") == 43, "43");

  // The child returns now: the deadline variants report kUnavailable, not kDeadlineExceeded.
  v = in.recv_for(absl::Seconds(30));
  Expect(absl::IsUnavailable(v.status()), "recv_for after the child returned: " + v.status().ToString());
  v = in.try_recv();
  Expect(absl::IsUnavailable(v.status()), "try_recv after the child returned: " + v.status().ToString());
  absl::Status s = go.try_send(3);
  Expect(absl::IsUnavailable(s), "try_send after the child returned: " + s.ToString());
  s = go.send_for(4, absl::Seconds(1));
  Expect(absl::IsUnavailable(s), "send_for after the child returned: " + s.ToString());
  Report("try_recv and deadlines ok");
  return 0;
}

}  // namespace

int RunBasicScenario(const std::string& name, int argc, char** argv) {
  if (name == "send_recv") return SendRecv();
  if (name == "ping_pong") return PingPong();
  if (name == "swap_types") return SwapTypes(IntArg(argc, argv, 2, 0));
  if (name == "optional_stream") return OptionalStream();
  if (name == "select") return Select();
  if (name == "try_recv") return TryRecv();
  return kUnknownScenario;
}

}  // namespace channel_scenarios
