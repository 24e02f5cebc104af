// Channel scenarios across real processes (issue 4, items 3 and 5). One
// program, many scenarios: argv[1] names the scenario (argv[2...] are its
// parameters); spawned processes re-execute this binary with the same argv and
// init() sends them to their function. tests/channels/*_test.cc run it under
// the local bridge with CONSTELLATION_FORMAT=json and check every process's
// exit, the bridge's exit code and the "RESULT ..." lines printed here.
//
// Every process checks what it receives: on a wrong value or an unexpected
// status it prints "FAIL ..." on stderr and exits 1, so a wrong value shows as a
// non-zero exit in the bridge's report even where no RESULT line is checked.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "constellation/constellation.h"
#include "lib/net/frame.h"

using namespace constellation;

namespace {

// ---- helpers ----------------------------------------------------------------------------

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "FAIL [%s] %s\n", pid().to_string().c_str(), what.c_str());
  std::fflush(stderr);
  std::exit(1);
}

void Expect(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

void ExpectOk(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Fail(absl::StrCat(what, ": ", status.ToString()));
}

template <class T>
T Get(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

// One line on stdout, flushed at once (the tests look for these).
void Report(const std::string& line) { std::cout << "RESULT " << line << std::endl; }

// recv must report that the remote is gone (kUnavailable): not a value, not a hang.
template <class T>
void ExpectGone(Receiver<T>& receiver, const std::string& what) {
  absl::StatusOr<T> value = receiver.recv();
  if (value.ok()) Fail(absl::StrCat(what, ": recv returned an extra value instead of an error"));
  if (!absl::IsUnavailable(value.status())) {
    Fail(absl::StrCat(what, ": expected kUnavailable once the remote is gone, got ", value.status().ToString()));
  }
}

template <class F, class... Args>
Pid Spawn(F fn, Args&&... args) {
  absl::StatusOr<Pid> child = spawn(Resources(), fn, std::forward<Args>(args)...);
  if (!child.ok()) Fail(absl::StrCat("spawn: ", child.status().ToString()));
  return *child;
}

// A value whose content depends on its index, to catch loss, duplication and reordering.
std::string Payload(int64_t index, size_t length) {
  std::string s = absl::StrCat(index, ":");
  s.append(length, static_cast<char>('a' + index % 26));
  return s;
}

void ExpectPayload(const std::string& got, int64_t index, size_t length, const std::string& what) {
  std::string want = Payload(index, length);
  if (got != want) {
    Fail(absl::StrCat(what, ": value ", index, " is wrong: got ", got.size(), " bytes starting \"", got.substr(0, 24),
                      "\", expected ", want.size(), " bytes starting \"", want.substr(0, 24), "\""));
  }
}

// The length of the i-th value of the exit and relay streams: varied, up to 20 KB.
size_t StreamLength(int64_t i) { return static_cast<size_t>((i * 7919) % 20000); }

constexpr size_t kOneMiB = size_t{1} << 20;

// Resident set size of this process in bytes.
uint64_t Rss() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

int IntArg(int argc, char** argv, int index, int fallback) { return argc > index ? std::atoi(argv[index]) : fallback; }

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

// ---- exit_*: a process sends a stream and exits at once; every value must arrive -------

constexpr int kExitStream = 3000;
std::string ExitFinal() { return std::string(3 * kOneMiB, 'z'); }  // a big last value, still in flight at exit

// mode 0: return from the function; 1: exit(0) with the Sender alive.
void ExitSender(Pid parent, int mode) {
  Sender<std::string> out(parent);
  for (int64_t i = 0; i < kExitStream; ++i) ExpectOk(out.send(Payload(i, StreamLength(i))), "send");
  ExpectOk(out.send(ExitFinal()), "send final");
  if (mode == 1) std::exit(0);
}

void ReceiveExitStream(Receiver<std::string>& in, const std::string& who) {
  for (int64_t i = 0; i < kExitStream; ++i) {
    ExpectPayload(Get(in.recv(), absl::StrCat(who, ": recv ", i)), i, StreamLength(i), who);
  }
  std::string final_value = Get(in.recv(), who + ": recv final");
  Expect(final_value == ExitFinal(), absl::StrCat(who, ": final value has ", final_value.size(), " bytes"));
  ExpectGone(in, who + ": recv after the sender exited");
}

int ExitChildSends(int mode) {
  Pid child = Spawn(ExitSender, mode);
  Receiver<std::string> in(child);
  ReceiveExitStream(in, "parent");
  Report(absl::StrCat("parent received ", kExitStream + 1, " values then kUnavailable"));
  return 0;
}

void ExitReceiver(Pid parent) {
  Receiver<std::string> in(parent);
  ReceiveExitStream(in, "child");
  Report(absl::StrCat("child received ", kExitStream + 1, " values then kUnavailable"));
}

// The root sends and leaves main at once. mode 0: return from main; 1: exit(0).
int ExitRootSends(int mode) {
  Pid child = Spawn(ExitReceiver);
  Sender<std::string> out(child);
  for (int64_t i = 0; i < kExitStream; ++i) ExpectOk(out.send(Payload(i, StreamLength(i))), "send");
  ExpectOk(out.send(ExitFinal()), "send final");
  if (mode == 1) std::exit(0);
  return 0;
}

// ---- ten_children: exchanging with the parent and with each other ---------------------

constexpr int kTen = 10;
constexpr int kTenValues = 100;
using TenSetup = std::tuple<std::vector<Pid>, int64_t>;

// Child i sends to i+1 and i+5, receives from i-1 and i+5 (so pairs dial each
// other at the same moment), and answers the parent 2x + everything it got.
void TenChild(Pid parent, int index) {
  auto [pids, x] = Get(Receiver<TenSetup>(parent).recv(), "recv setup");
  Expect(pids.size() == kTen && pids[index] == pid(), "setup names this process");
  int next = (index + 1) % kTen, prev = (index + kTen - 1) % kTen, partner = (index + 5) % kTen;
  Sender<int64_t> to_next(pids[next]);
  Sender<int64_t> to_partner(pids[partner]);
  Receiver<int64_t> from_prev(pids[prev]);
  Receiver<int64_t> from_partner(pids[partner]);
  for (int k = 0; k < kTenValues; ++k) {
    ExpectOk(to_next.send(index * 1000 + k), "send to next");
    ExpectOk(to_partner.send(-(index * 1000 + k)), "send to partner");
  }
  int64_t sum = 0;
  for (int k = 0; k < kTenValues; ++k) {
    int64_t a = Get(from_prev.recv(), "recv from prev");
    Expect(a == prev * 1000 + k, absl::StrCat("from prev: value ", k, " is ", a));
    int64_t b = Get(from_partner.recv(), "recv from partner");
    Expect(b == -(partner * 1000 + k), absl::StrCat("from partner: value ", k, " is ", b));
    sum += a - b;
  }
  ExpectOk(Sender<int64_t>(parent).send(2 * x + sum), "send answer");
  Report(absl::StrCat("child ", index, " done"));
}

int TenChildren() {
  std::vector<Pid> pids;
  for (int i = 0; i < kTen; ++i) pids.push_back(Spawn(TenChild, i));
  for (int i = 0; i < kTen; ++i) ExpectOk(Sender<TenSetup>(pids[i]).send(TenSetup(pids, i + 7)), "send setup");
  int64_t per_sender = int64_t{kTenValues} * (kTenValues - 1) / 2;
  for (int i = 0; i < kTen; ++i) {
    int prev = (i + kTen - 1) % kTen, partner = (i + 5) % kTen;
    int64_t expected =
        2 * (i + 7) + (prev * 1000 * kTenValues + per_sender) + (partner * 1000 * kTenValues + per_sender);
    Receiver<int64_t> in(pids[i]);
    int64_t got = Get(in.recv(), absl::StrCat("answer of child ", i));
    Expect(got == expected, absl::StrCat("child ", i, " answered ", got, ", expected ", expected));
    ExpectGone(in, absl::StrCat("recv from child ", i, " after it returned"));
  }
  Report("parent checked 10 answers");
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

// ---- all_to_all among 8 -----------------------------------------------------------------

constexpr int kAllValues = 50;

void AllMember(Pid parent, int index) {
  std::vector<Pid> everyone = Get(Receiver<std::vector<Pid>>(parent).recv(), "recv pids");
  std::vector<std::pair<Sender<int64_t>, Receiver<int64_t>>> links;
  std::vector<int> others;
  for (size_t j = 0; j < everyone.size(); ++j) {
    if (static_cast<int>(j) == index) continue;
    links.emplace_back(Sender<int64_t>(everyone[j]), Receiver<int64_t>(everyone[j]));
    others.push_back(static_cast<int>(j));
  }
  for (int k = 0; k < kAllValues; ++k) {
    for (auto& link : links) ExpectOk(link.first.send(index * 1000 + k), "send");
  }
  int64_t sum = 0;
  for (size_t l = 0; l < links.size(); ++l) {
    for (int k = 0; k < kAllValues; ++k) {
      int64_t v = Get(links[l].second.recv(), absl::StrCat("recv from member ", others[l]));
      Expect(v == others[l] * 1000 + k, absl::StrCat("from member ", others[l], ": value ", k, " is ", v));
      sum += v;
    }
  }
  ExpectOk(Sender<int64_t>(parent).send(sum), "send sum");
  Report(absl::StrCat("member ", index, " received ", links.size() * kAllValues));
}

int AllToAll(int n) {
  std::vector<Pid> pids;
  for (int i = 0; i < n; ++i) pids.push_back(Spawn(AllMember, i));
  for (const Pid& p : pids) ExpectOk(Sender<std::vector<Pid>>(p).send(pids), "send pids");
  int64_t per_member = int64_t{kAllValues} * (kAllValues - 1) / 2;
  int64_t all = 0;
  for (int i = 0; i < n; ++i) all += int64_t{i} * 1000 * kAllValues + per_member;
  for (int i = 0; i < n; ++i) {
    int64_t expected = all - (int64_t{i} * 1000 * kAllValues + per_member);
    int64_t got = Get(Receiver<int64_t>(pids[i]).recv(), absl::StrCat("sum of member ", i));
    Expect(got == expected, absl::StrCat("member ", i, " summed ", got, ", expected ", expected));
  }
  Report(absl::StrCat("all-to-all among ", n, " ok"));
  return 0;
}

// ---- relay: root -> A -> B -> C, each exits right after its last send --------------------

constexpr int kRelayCount = 1000;
constexpr int kRelayDepth = 3;

// Down only: forwards to its child; C checks.
void RelayDown(Pid parent, int depth) {
  Receiver<std::string> in(parent);
  if (depth == kRelayDepth) {
    for (int64_t i = 0; i < kRelayCount; ++i) {
      ExpectPayload(Get(in.recv(), absl::StrCat("C recv ", i)), i, StreamLength(i), "C");
    }
    ExpectGone(in, "C: recv after B exited");
    Report(absl::StrCat("relay C received ", kRelayCount, " then kUnavailable"));
    return;
  }
  Sender<std::string> out(Spawn(RelayDown, depth + 1));
  for (int64_t i = 0; i < kRelayCount; ++i) ExpectOk(out.send(Get(in.recv(), "relay recv")), "relay send");
  Report(absl::StrCat("relay depth ", depth, " forwarded ", kRelayCount));
}  // returns right after the last send

int RelayDownRoot() {
  Sender<std::string> out(Spawn(RelayDown, 1));
  for (int64_t i = 0; i < kRelayCount; ++i) ExpectOk(out.send(Payload(i, StreamLength(i))), "send");
  return 0;  // leaves main right after sending
}

// Down then back up: C answers every value; each level forwards both ways and exits right after.
void RelayRound(Pid parent, int depth) {
  Receiver<std::string> from_parent(parent);
  Sender<std::string> to_parent(parent);
  if (depth == kRelayDepth) {
    std::vector<std::string> got;
    for (int64_t i = 0; i < kRelayCount; ++i) got.push_back(Get(from_parent.recv(), "C recv"));
    for (auto& v : got) ExpectOk(to_parent.send("C" + v), "C send");
    Report("relay C answered");
    return;
  }
  Pid child = Spawn(RelayRound, depth + 1);
  Sender<std::string> to_child(child);
  Receiver<std::string> from_child(child);
  for (int64_t i = 0; i < kRelayCount; ++i) ExpectOk(to_child.send(Get(from_parent.recv(), "recv down")), "send down");
  for (int64_t i = 0; i < kRelayCount; ++i) ExpectOk(to_parent.send(Get(from_child.recv(), "recv up")), "send up");
  Report(absl::StrCat("relay depth ", depth, " forwarded both ways"));
}

int RelayRoundRoot() {
  Pid a = Spawn(RelayRound, 1);
  Sender<std::string> out(a);
  Receiver<std::string> in(a);
  for (int64_t i = 0; i < kRelayCount; ++i) ExpectOk(out.send(Payload(i, StreamLength(i))), "send");
  for (int64_t i = 0; i < kRelayCount; ++i) {
    std::string v = Get(in.recv(), absl::StrCat("recv ", i));
    Expect(!v.empty() && v[0] == 'C', "answer from C");
    ExpectPayload(v.substr(1), i, StreamLength(i), "root");
  }
  ExpectGone(in, "recv after A exited");
  Report(absl::StrCat("relay round trip of ", kRelayCount, " ok"));
  return 0;
}

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

// ---- big_value: 100 MiB each way --------------------------------------------------------

// Built from a 4 KiB pseudo-random block copied page by page, each page
// stamped with its index: cheap to make and check even unoptimized and under
// ThreadSanitizer (memcpy/memcmp), and still catches corruption, loss and
// reordering of pages.
constexpr size_t kBigPage = 4096;

std::string BigBlock(uint64_t seed) {
  std::string block(kBigPage, '\0');
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < kBigPage; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    block[i] = static_cast<char>(x);
  }
  return block;
}

std::string BigValue(size_t size, uint64_t seed) {
  std::string block = BigBlock(seed);
  std::string s(size, '\0');
  for (size_t at = 0; at < size; at += kBigPage) {
    size_t n = std::min(kBigPage, size - at);
    std::memcpy(s.data() + at, block.data(), n);
    uint64_t stamp = at / kBigPage ^ (seed << 56);
    std::memcpy(s.data() + at, &stamp, std::min<size_t>(n, sizeof(stamp)));
  }
  return s;
}

bool IsBigValue(const std::string& s, size_t size, uint64_t seed) {
  if (s.size() != size) return false;
  std::string want_page = BigBlock(seed);
  for (size_t at = 0; at < size; at += kBigPage) {
    size_t n = std::min(kBigPage, size - at);
    uint64_t stamp = at / kBigPage ^ (seed << 56);
    std::memcpy(want_page.data(), &stamp, std::min<size_t>(n, sizeof(stamp)));
    if (std::memcmp(s.data() + at, want_page.data(), n) != 0) return false;
  }
  return true;
}

void BigChild(Pid parent, int64_t size) {
  Receiver<std::string> in(parent);
  Sender<std::string> out(parent);
  std::string got = Get(in.recv(), "child recv big");
  Expect(got.size() == static_cast<size_t>(size), absl::StrCat("child got ", got.size(), " bytes"));
  Expect(IsBigValue(got, size, 1), "child: the big value's bytes differ");
  got.clear();
  got.shrink_to_fit();
  ExpectOk(out.send(BigValue(size, 2)), "child send big");
  Report(absl::StrCat("child received and sent ", size, " bytes"));
}  // exits right after sending: the exit flush carries the value

int BigValueScenario(int mib) {
  int64_t size = int64_t{mib} * kOneMiB;
  Pid child = Spawn(BigChild, size);
  Sender<std::string> out(child);
  Receiver<std::string> in(child);
  absl::Time start = absl::Now();
  absl::Duration send_took, recv_took;
  {
    std::string big = BigValue(size, 1);
    absl::Time t = absl::Now();
    ExpectOk(out.send(big), "send big");
    send_took = absl::Now() - t;
  }
  absl::Time t = absl::Now();
  std::string got = Get(in.recv(), "recv big");
  recv_took = absl::Now() - t;
  Expect(got.size() == static_cast<size_t>(size), absl::StrCat("parent got ", got.size(), " bytes"));
  Expect(IsBigValue(got, size, 2), "parent: the big value's bytes differ");
  ExpectGone(in, "recv after the child returned");
  Report(absl::StrCat("big value of ", mib, " MiB each way in ", absl::ToInt64Milliseconds(absl::Now() - start),
                      " ms (send returned after ", absl::ToInt64Milliseconds(send_took), " ms, recv waited ",
                      absl::ToInt64Milliseconds(recv_took), " ms)"));
  return 0;
}

// ---- back_pressure: a reader that stops; try_send until kDeadlineExceeded -----------------

constexpr size_t kPressureValue = 64 * 1024;
constexpr int kPressureMore = 200;

// Tells the reader to start: gets the reader's pid from the parent, then signals it.
void PressureHelper(Pid parent) {
  Pid reader = Get(Receiver<Pid>(parent).recv(), "helper recv");
  ExpectOk(Sender<int>(reader).send(1), "helper send go");
}

void PressureReader(Pid parent, Pid helper) {
  Receiver<std::string> in(parent);
  Get(Receiver<int>(helper).recv(), "reader recv go");  // reads nothing from the parent before this
  int64_t count = 0;
  while (true) {
    std::string v = Get(in.recv(), absl::StrCat("reader recv ", count));
    if (v == "end") break;
    ExpectPayload(v, count, kPressureValue, "reader");
    ++count;
  }
  ExpectOk(Sender<int64_t>(parent).send(count), "reader send count");
  Report(absl::StrCat("reader got ", count, " values in order"));
}

int BackPressure() {
  Pid helper = Spawn(PressureHelper);
  Pid reader = Spawn(PressureReader, helper);
  Sender<std::string> out(reader);
  uint64_t rss_before = Rss();
  int64_t sent = 0;
  absl::Status status;
  while (true) {
    status = out.try_send(Payload(sent, kPressureValue));
    if (!status.ok()) break;
    ++sent;
    Expect(sent < 20000, absl::StrCat("try_send never blocked: ", sent, " values of 64 KiB accepted"));
  }
  Expect(absl::IsDeadlineExceeded(status), "try_send at the bound: " + status.ToString());
  int64_t first_refusal = sent;
  // The first refusal can be momentary (the loop may still move queued frames
  // into the socket buffers and the reader's queue): fill until a send waits
  // 300 ms in vain. Nobody reads, so this must stop soon.
  while (true) {
    status = out.send_for(Payload(sent, kPressureValue), absl::Milliseconds(300));
    if (!status.ok()) break;
    ++sent;
    Expect(sent < 20000, absl::StrCat("send_for never blocked: ", sent, " values of 64 KiB accepted"));
  }
  Expect(absl::IsDeadlineExceeded(status), "send_for at the bound: " + status.ToString());
  uint64_t rss_after = Rss();
  int64_t growth_mib =
      (static_cast<int64_t>(rss_after) - static_cast<int64_t>(rss_before)) / static_cast<int64_t>(kOneMiB);
  absl::Status later = out.try_send(Payload(sent, kPressureValue));
  Expect(absl::IsDeadlineExceeded(later), "try_send while the reader waits: " + later.ToString());
  Report(absl::StrCat("back_pressure accepted ", sent, " values (", sent * kPressureValue / kOneMiB,
                      " MiB) before kDeadlineExceeded; sender RSS grew ", growth_mib, " MiB; first refusal after ",
                      first_refusal));

  ExpectOk(Sender<Pid>(helper).send(reader), "send go via the helper");
  for (int64_t i = sent; i < sent + kPressureMore; ++i) ExpectOk(out.send(Payload(i, kPressureValue)), "send");
  ExpectOk(out.send("end"), "send end");
  int64_t count = Get(Receiver<int64_t>(reader).recv(), "recv count");
  Expect(count == sent + kPressureMore, absl::StrCat("reader counted ", count, ", sent ", sent + kPressureMore));
  Report(absl::StrCat("back_pressure delivered ", count, " values in order"));
  return 0;
}

// ---- no_stall: one direction stalled does not stall the other -----------------------------

constexpr int kNoStallValues = 500;  // 64 KiB each: far more than fits in the buffers

// Sends its values to the parent while never reading what the parent sent,
// until the helper says so. Its sends complete only if the parent can receive
// while the parent -> child direction of the same connection is full.
void NoStallChild(Pid parent, Pid helper) {
  Receiver<std::string> in(parent);
  Sender<std::string> out(parent);
  for (int64_t i = 0; i < kNoStallValues; ++i) ExpectOk(out.send(Payload(i, kPressureValue)), "child send");
  Get(Receiver<int>(helper).recv(), "child recv go");
  int64_t count = 0;
  while (true) {
    std::string v = Get(in.recv(), "child recv");
    if (v == "end") break;
    ExpectPayload(v, count, kPressureValue, "child");
    ++count;
  }
  Report(absl::StrCat("no_stall child read ", count, " values in order"));
}

int NoStall() {
  Pid helper = Spawn(PressureHelper);
  Pid child = Spawn(NoStallChild, helper);
  Sender<std::string> out(child);
  Receiver<std::string> in(child);
  int64_t sent = 0;
  while (true) {  // until the parent -> child direction is full: nobody reads it
    absl::Status status = out.send_for(Payload(sent, kPressureValue), absl::Milliseconds(300));
    if (absl::IsDeadlineExceeded(status)) break;
    ExpectOk(status, "send");
    Expect(++sent < 20000, "the parent -> child direction never filled up");
  }
  for (int64_t i = 0; i < kNoStallValues; ++i) {
    absl::StatusOr<std::string> v = in.recv_for(absl::Seconds(20));
    Expect(v.ok(), absl::StrCat("recv ", i, " while the other direction is full: ", v.status().ToString()));
    ExpectPayload(*v, i, kPressureValue, "parent");
  }
  absl::Status still = out.try_send(Payload(sent, kPressureValue));
  Expect(absl::IsDeadlineExceeded(still), "try_send while the child still does not read: " + still.ToString());
  ExpectOk(Sender<Pid>(helper).send(child), "send go via the helper");
  ExpectOk(out.send("end"), "send end");
  ExpectGone(in, "recv after the child returned");
  Report(
      absl::StrCat("no_stall parent received ", kNoStallValues, " values with ", sent, " values stuck the other way"));
  return 0;
}

// ---- hostile: connections from outside the program do not disturb it ----------------------

// A partner ping-pongs with the parent while an attacker connects to the
// parent's data port with garbage, bad hellos and bad frames.
void HostilePartner(Pid parent) {
  Receiver<int64_t> in(parent);
  Sender<int64_t> out(parent);
  while (true) {
    int64_t v = Get(in.recv(), "partner recv");
    if (v < 0) break;
    ExpectOk(out.send(v + 1), "partner send");
  }
}

int ConnectTo(const Pid& target) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string ip = target.ip_string();
  if (target.is_ipv4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(target.port());
    Expect(inet_pton(AF_INET, ip.c_str(), &a->sin_addr) == 1, "address " + ip);
    len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(target.port());
    Expect(inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) == 1, "address " + ip);
    len = sizeof(sockaddr_in6);
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Expect(fd >= 0, "socket");
  Expect(connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0,
         absl::StrCat("connect to ", target.to_full_string(), ": ", std::strerror(errno)));
  return fd;
}

// Best effort: the attacked process may close the connection before it has all of it.
void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Reads until the peer closes the connection (EOF or reset); returns what it
// sent first. Fails if it stays open for 20 s.
std::string ReadUntilClosed(int fd, const std::string& what) {
  std::string got;
  absl::Time limit = absl::Now() + absl::Seconds(20);
  while (true) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(limit - absl::Now()));
    Expect(left > 0, what + ": the parent kept the connection open for 20 s");
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r > 0) {
      got.append(buf, r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    close(fd);
    return got;  // EOF or an error (reset): closed
  }
}

std::string HelloBytes(net::HelloKind kind, const Pid& from, const Pid& to) {
  char buf[net::kHelloSize];
  net::EncodeHello(net::Hello{kind, from, to}, buf);
  return std::string(buf, sizeof(buf));
}

std::string HeaderBytes(net::FrameKind kind, uint8_t channel, uint64_t fingerprint, uint64_t length) {
  net::FrameHeader h;
  h.kind = kind;
  h.channel = channel;
  h.fingerprint = fingerprint;
  h.length = length;
  char buf[net::kFrameHeaderSize];
  net::EncodeFrameHeader(h, buf);
  return std::string(buf, sizeof(buf));
}

// Dials `target` as the (made-up) process `from`, expects its accept.
int DialAs(const Pid& target, const Pid& from, const std::string& what) {
  int fd = ConnectTo(target);
  WriteAll(fd, HelloBytes(net::HelloKind::kDial, from, target));
  std::string reply;
  while (reply.size() < net::kHelloSize) {
    char buf[net::kHelloSize];
    ssize_t r = read(fd, buf, net::kHelloSize - reply.size());
    if (r < 0 && errno == EINTR) continue;
    Expect(r > 0, what + ": no accept for a well-formed hello");
    reply.append(buf, r);
  }
  net::Hello hello;
  ExpectOk(net::DecodeHello(reply.data(), &hello), what + ": the reply hello");
  Expect(hello.kind == net::HelloKind::kAccept, absl::StrCat(what, ": reply kind ", static_cast<int>(hello.kind)));
  Expect(hello.from == target, what + ": the reply names another process");
  return fd;
}

void HostileAttacker(Pid parent) {
  int attacks = 0;
  auto fake = [](uint32_t nonce) { return Pid::FromIpv4(0x7f000001, 9, nonce); };
  {  // a port scan: connect and close
    close(ConnectTo(parent));
    ++attacks;
  }
  {  // garbage
    int fd = ConnectTo(parent);
    WriteAll(fd, std::string(200, '\x5a'));
    ReadUntilClosed(fd, "garbage");
    ++attacks;
  }
  {  // a half hello, then close
    int fd = ConnectTo(parent);
    WriteAll(fd, HelloBytes(net::HelloKind::kDial, fake(1), parent).substr(0, 20));
    shutdown(fd, SHUT_WR);
    ReadUntilClosed(fd, "half hello");
    ++attacks;
  }
  {  // a hello for another process (the right address and port, another nonce)
    int fd = ConnectTo(parent);
    Pid other(parent.addr(), parent.port(), parent.nonce() ^ 1);
    WriteAll(fd, HelloBytes(net::HelloKind::kDial, fake(2), other));
    std::string got = ReadUntilClosed(fd, "wrong pid");
    if (got.size() >= net::kHelloSize) {
      net::Hello hello;
      ExpectOk(net::DecodeHello(got.data(), &hello), "wrong-pid reply");
      Expect(hello.kind == net::HelloKind::kWrongPid,
             absl::StrCat("wrong-pid reply kind ", static_cast<int>(hello.kind)));
    }
    ++attacks;
  }
  {  // a frame claiming 10 GiB
    int fd = DialAs(parent, fake(3), "10 GiB frame");
    WriteAll(fd, HeaderBytes(net::FrameKind::kData, 0, 1, uint64_t{10} << 30));
    WriteAll(fd, std::string(1000, 'x'));
    ReadUntilClosed(fd, "10 GiB frame");
    ++attacks;
  }
  {  // an unknown frame kind
    int fd = DialAs(parent, fake(4), "bad kind");
    std::string h = HeaderBytes(net::FrameKind::kData, 0, 1, 4);
    h[0] = 9;
    WriteAll(fd, h + "abcd");
    ReadUntilClosed(fd, "bad kind");
    ++attacks;
  }
  {  // a truncated frame: 100 bytes claimed, 10 sent, then EOF
    int fd = DialAs(parent, fake(5), "truncated frame");
    WriteAll(fd, HeaderBytes(net::FrameKind::kData, 0, 1, 100) + std::string(10, 'y'));
    shutdown(fd, SHUT_WR);
    ReadUntilClosed(fd, "truncated frame");
    ++attacks;
  }
  ExpectOk(Sender<int>(parent).send(attacks), "attacker send done");
  Report(absl::StrCat("attacker made ", attacks, " hostile connections"));
}

int Hostile() {
  Pid partner = Spawn(HostilePartner);
  Sender<int64_t> to_partner(partner);
  Receiver<int64_t> from_partner(partner);
  Pid attacker = Spawn(HostileAttacker);
  Receiver<int> from_attacker(attacker);
  int64_t rounds = 0;
  auto ping = [&] {
    ExpectOk(to_partner.send(rounds), "send to partner");
    int64_t v = Get(from_partner.recv(), "recv from partner");
    Expect(v == rounds + 1, absl::StrCat("partner round ", rounds, ": ", v));
    ++rounds;
  };
  // Keep the partner channel busy until the attacker is done.
  std::optional<int> attacks;
  while (!attacks.has_value()) {
    ping();
    absl::StatusOr<int> done = from_attacker.try_recv();
    if (done.ok())
      attacks = *done;
    else
      Expect(absl::IsDeadlineExceeded(done.status()), "recv from attacker: " + done.status().ToString());
    Expect(rounds < 10'000'000, "the attacker never finished");
  }
  for (int i = 0; i < 100; ++i) ping();
  ExpectOk(to_partner.send(-1), "stop partner");
  ExpectGone(from_partner, "recv after the partner returned");
  ExpectGone(from_attacker, "recv after the attacker returned");
  uint64_t rss = Rss();
  Expect(rss < uint64_t{1} << 30, absl::StrCat("RSS is ", rss, " bytes after a frame claimed 10 GiB"));
  Report(absl::StrCat("hostile: survived ", *attacks, " attacks; ", rounds, " partner rounds; RSS ", rss / kOneMiB,
                      " MiB"));
  return 0;
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

// ---- duplex: both directions at once, from several threads ----------------------------------

constexpr int kDuplexValues = 5000;
constexpr int kDuplexChildren = 2;

size_t DuplexLength(int64_t i) { return static_cast<size_t>((i * 131) % 3000); }

// Streams `kDuplexValues` to `remote` on one thread while receiving as many from it on this one.
void Duplex(const Pid& remote, const std::string& who) {
  Sender<std::string> out(remote);
  Receiver<std::string> in(remote);
  std::thread sender([&] {
    for (int64_t i = 0; i < kDuplexValues; ++i) ExpectOk(out.send(Payload(i, DuplexLength(i))), who + " send");
  });
  for (int64_t i = 0; i < kDuplexValues; ++i) {
    ExpectPayload(Get(in.recv(), who + " recv"), i, DuplexLength(i), who);
  }
  sender.join();
}

void DuplexChild(Pid parent, int index) {
  Duplex(parent, absl::StrCat("child ", index));
  Report(absl::StrCat("duplex child ", index, " ok"));
}

int DuplexScenario() {
  std::vector<std::thread> threads;
  for (int i = 0; i < kDuplexChildren; ++i) {
    Pid child = Spawn(DuplexChild, i);
    threads.emplace_back([child, i] { Duplex(child, absl::StrCat("parent with child ", i)); });
  }
  for (std::thread& t : threads) t.join();
  Report(
      absl::StrCat("duplex parent exchanged ", kDuplexValues, " values each way with ", kDuplexChildren, " children"));
  return 0;
}

// ---- stuck_peer: the exit flush gives up on a peer that does not read -------------------

// Fills its queue toward the parent (which never reads) and returns: the exit
// flush cannot finish and must give up after its bound (10 s).
void StuckSender(Pid parent) {
  Sender<std::string> out(parent);
  int64_t sent = 0;
  while (true) {
    absl::Status status = out.send_for(Payload(sent, kPressureValue), absl::Milliseconds(300));
    if (absl::IsDeadlineExceeded(status)) break;
    ExpectOk(status, "send");
    Expect(++sent < 20000, "send never blocked");
  }
  Report(absl::StrCat("stuck sender queued ", sent, " values and returns"));
}

// Reports to the parent when `stuck` has exited (its Receiver sees the end).
void ExitWatcher(Pid parent) {
  Pid stuck = Get(Receiver<Pid>(parent).recv(), "watcher recv pid");
  Receiver<int> from_stuck(stuck);
  ExpectGone(from_stuck, "watcher recv from the stuck sender");
  ExpectOk(Sender<int>(parent).send(1), "watcher send");
}

int StuckPeer() {
  Pid watcher = Spawn(ExitWatcher);
  Pid stuck = Spawn(StuckSender);
  Receiver<std::string> in(stuck);  // never read until the sender has exited
  absl::Time start = absl::Now();
  ExpectOk(Sender<Pid>(watcher).send(stuck), "send pid to watcher");
  Get(Receiver<int>(watcher).recv(), "recv from watcher");
  absl::Duration took = absl::Now() - start;
  int64_t got = 0;
  while (true) {
    absl::StatusOr<std::string> v = in.recv();
    if (!v.ok()) {
      Expect(absl::IsUnavailable(v.status()), "recv after the sender exited: " + v.status().ToString());
      break;
    }
    ExpectPayload(*v, got, kPressureValue, "parent");  // what arrived is a prefix, in order
    ++got;
  }
  Report(absl::StrCat("stuck peer: the sender exited after ", absl::ToInt64Seconds(took), " s; ", got,
                      " values arrived in order, then kUnavailable"));
  return 0;
}

// ---- bogus_pid: channels to pids that name no live process -------------------------------

void ReturnAtOnce(Pid parent) {}

// Sends until the Sender reports the peer unusable (bounded), then checks recv.
void ExpectNoSuchProcess(const Pid& bogus, const std::string& what) {
  {
    Sender<int> out(bogus);
    absl::Status status;
    int attempts = 0;
    absl::Time limit = absl::Now() + absl::Seconds(30);
    while ((status = out.send_for(attempts, absl::Seconds(30))).ok()) {
      Expect(++attempts < 100000 && absl::Now() < limit, what + ": send kept succeeding");
    }
    Expect(absl::IsUnavailable(status), what + ": send: " + status.ToString());
  }
  Receiver<int> in(bogus);
  absl::StatusOr<int> v = in.recv_for(absl::Seconds(30));
  Expect(absl::IsUnavailable(v.status()), what + ": recv: " + v.status().ToString());
}

int BogusPid() {
  Pid live = Spawn(HostilePartner);  // stays until told to stop
  // The live process's address and port with another nonce: it answers "wrong pid".
  ExpectNoSuchProcess(Pid(live.addr(), live.port(), live.nonce() ^ 0x5a5a), "wrong nonce");
  // A process that has exited: its port refuses.
  Pid gone = Spawn(ReturnAtOnce);
  {
    Receiver<int> watch(gone);
    ExpectGone(watch, "recv from the returned child");
  }
  ExpectNoSuchProcess(Pid(gone.addr(), gone.port(), gone.nonce() ^ 1), "exited process's port");
  // The live process is not disturbed by any of this.
  Sender<int64_t> to_live(live);
  Receiver<int64_t> from_live(live);
  ExpectOk(to_live.send(41), "send to live");
  Expect(Get(from_live.recv(), "recv from live") == 42, "live answer");
  ExpectOk(to_live.send(-1), "stop live");
  ExpectGone(from_live, "recv after the live child returned");
  Report("bogus pids report kUnavailable");
  return 0;
}

int Run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <scenario> [args]\n", argv[0]);
    return 64;
  }
  std::string name = argv[1];
  if (name == "send_recv") return SendRecv();
  if (name == "ping_pong") return PingPong();
  if (name == "exit_child_return") return ExitChildSends(0);
  if (name == "exit_child_exit") return ExitChildSends(1);
  if (name == "exit_root_return") return ExitRootSends(0);
  if (name == "exit_root_exit") return ExitRootSends(1);
  if (name == "ten_children") return TenChildren();
  if (name == "swap_types") return SwapTypes(IntArg(argc, argv, 2, 0));
  if (name == "optional_stream") return OptionalStream();
  if (name == "all_to_all") return AllToAll(IntArg(argc, argv, 2, 8));
  if (name == "relay_down") return RelayDownRoot();
  if (name == "relay_round") return RelayRoundRoot();
  if (name == "sigkill") return RecvAfterSigkill();
  if (name == "sigkill_streaming") return SigkillStreaming();
  if (name == "send_to_exited") return SendToExited();
  if (name == "misuse") return Misuse(argc > 2 ? argv[2] : "");
  if (name == "select") return Select();
  if (name == "try_recv") return TryRecv();
  if (name == "big_value") return BigValueScenario(IntArg(argc, argv, 2, 100));
  if (name == "back_pressure") return BackPressure();
  if (name == "no_stall") return NoStall();
  if (name == "hostile") return Hostile();
  if (name == "hang") return Hang();
  if (name == "duplex") return DuplexScenario();
  if (name == "stuck_peer") return StuckPeer();
  if (name == "bogus_pid") return BogusPid();
  std::fprintf(stderr, "unknown scenario %s\n", name.c_str());
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  init();
  return Run(argc, argv);
}
