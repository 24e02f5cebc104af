// Channel scenarios (scenarios.h) with many processes and streams: values in
// flight at exit, ten children, all to all, relays down and back up a chain,
// duplex traffic from several threads.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "constellation/constellation.h"
#include "tests/channels/scenarios.h"
#include "tests/channels/scenarios_util.h"

using namespace constellation;

namespace channel_scenarios {
namespace {

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

}  // namespace

int RunManyScenario(const std::string& name, int argc, char** argv) {
  if (name == "exit_child_return") return ExitChildSends(0);
  if (name == "exit_child_exit") return ExitChildSends(1);
  if (name == "exit_root_return") return ExitRootSends(0);
  if (name == "exit_root_exit") return ExitRootSends(1);
  if (name == "ten_children") return TenChildren();
  if (name == "all_to_all") return AllToAll(IntArg(argc, argv, 2, 8));
  if (name == "relay_down") return RelayDownRoot();
  if (name == "relay_round") return RelayRoundRoot();
  if (name == "duplex") return DuplexScenario();
  return kUnknownScenario;
}

}  // namespace channel_scenarios
