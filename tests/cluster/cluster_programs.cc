// Test programs for the cluster tests (tests/cluster/*_test.cc), deployed with
// cdeploy. argv[1] names the program; spawned processes re-execute this
// binary with the same argv. Lines the tests look for:
//   "<who> at <full pid> os <getpid()>"  where a process runs (its Pid's IP is
//                                         its node's, its OS pid's ancestors
//                                         include its node daemon)
//
//   where <n>   the root spawns n children, tells each every child's Pid, and
//               the children pass a token around a ring (child i sends to
//               i+1 and receives from i-1), so channels cross nodes; each
//               reports the sum back. Prints "ring ok among <n>".
//   fill <mib>  resources on the fabric: try_spawns <mib> MiB holders (each
//               stays alive until its parent tells it to exit, over a
//               channel) until ResourceExhausted; then a spawn() that must
//               wait (the cluster is full) and succeeds once one holder is
//               told to exit (after "release" on stdin); then try_spawn
//               fails again; then everything ends. Prints what happened, line
//               by line (see FillMain below).
//   hold <n>    the root spawns n children that each print where they run
//               and then block on a message from the root; the root waits,
//               one thread per child, on a value from each. A child answers
//               once the root gets "release" on stdin. Made for SIGKILLing a
//               node mid-run: the root prints "recv from <full pid> failed:
//               ..." for each child lost with its node, "got <v> from <full
//               pid>" for the others, then, from a monitor of each child,
//               "down <full pid>: <Down::to_string()>" (its node lost, or
//               exited with code 0), and exits 0.
//   uid         the root and a child it spawns each print "<who> uid <uid> euid <euid>".
//   env <name>... the root prints "<name>=<value>" or "<name> unset" for each
//               name, one a line (what cdeploy forwarded).
//   count <n> [<k>] prints "line 1" to "line <k>", waits for a line (or EOF) on
//               stdin, then prints "line <k+1>" to "line <n>": a client can
//               hang up after line k and the rest is made while it is away
//               (the job API's resume tests). k defaults to n: no wait.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "constellation/constellation.h"

using namespace constellation;

namespace {

std::mutex g_print_mu;

void Say(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_print_mu);
  printf("%s\n", line.c_str());
  fflush(stdout);
}

std::string Where(const std::string& who) {
  return who + " at " + pid().to_full_string() + " os " + std::to_string(getpid());
}

[[noreturn]] void Fail(const std::string& what, const absl::Status& status) {
  fprintf(stderr, "%s: %s\n", what.c_str(), status.ToString().c_str());
  fflush(stderr);
  exit(3);
}

// ---- where ------------------------------------------------------------------------

void RingMember(Pid parent, int index) {
  Say(Where("child " + std::to_string(index)));
  absl::StatusOr<std::vector<Pid>> everyone = Receiver<std::vector<Pid>>(parent).recv();
  if (!everyone.ok()) Fail("recv pids", everyone.status());
  int n = static_cast<int>(everyone->size());
  if (n == 1) {
    absl::Status sent = Sender<int>(parent).send(index);
    if (!sent.ok()) Fail("send to parent", sent);
    return;
  }
  const Pid& next = (*everyone)[(index + 1) % n];
  const Pid& prev = (*everyone)[(index + n - 1) % n];
  Sender<int> to_next(next);
  Receiver<int> from_prev(prev);
  absl::Status sent = to_next.send(index);
  if (!sent.ok()) Fail("send to next", sent);
  absl::StatusOr<int> got = from_prev.recv();
  if (!got.ok()) Fail("recv from prev", got.status());
  Say("child " + std::to_string(index) + " got " + std::to_string(*got) + " from " + prev.to_full_string());
  sent = Sender<int>(parent).send(index * 1000 + *got);
  if (!sent.ok()) Fail("send to parent", sent);
}

int WhereMain(int n) {
  Say(Where("root"));
  std::vector<Pid> children;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<Pid> child = spawn(Resources{20 * kMiB, 1.0 / 64}, RingMember, i);
    if (!child.ok()) Fail("spawn", child.status());
    children.push_back(*child);
  }
  for (const Pid& child : children) {
    absl::Status sent = Sender<std::vector<Pid>>(child).send(children);
    if (!sent.ok()) Fail("send pids", sent);
  }
  bool ok = true;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<int> got = Receiver<int>(children[i]).recv();
    if (!got.ok()) Fail("recv from child", got.status());
    int want = n == 1 ? i : i * 1000 + (i + n - 1) % n;
    ok = ok && *got == want;
  }
  Say(std::string(ok ? "ring ok among " : "ring FAILED among ") + std::to_string(n));
  return ok ? 0 : 1;
}

// ---- fill ---------------------------------------------------------------------------

// Stays alive until its parent sends it a value, then exits.
void Holder(Pid parent, int index) {
  Say(Where("holder " + std::to_string(index)));
  absl::StatusOr<int> got = Receiver<int>(parent).recv();
  if (!got.ok()) Fail("holder recv", got.status());
  Say("holder " + std::to_string(index) + " told to exit");
}

int FillMain(uint64_t mib) {
  Resources big{mib * kMiB, 1.0 / 64};
  std::vector<Pid> holders;
  // try_spawn until the cluster is full.
  while (true) {
    absl::Time start = absl::Now();
    absl::StatusOr<Pid> child = try_spawn(big, Holder, static_cast<int>(holders.size()));
    int64_t ms = absl::ToInt64Milliseconds(absl::Now() - start);
    if (child.ok()) {
      holders.push_back(*child);
      if (holders.size() > 64) Fail("try_spawn", absl::InternalError("never ran out of room"));
      continue;
    }
    Say("placed " + std::to_string(holders.size()));
    Say(std::string("try_spawn failed: ") +
        (absl::IsResourceExhausted(child.status()) ? "ResourceExhausted" : "other") + " in " + std::to_string(ms) +
        " ms: " + child.status().ToString());
    break;
  }
  // A spawn() now has to wait for room.
  std::atomic<bool> returned{false};
  absl::StatusOr<Pid> waited = absl::UnknownError("not yet");
  std::thread waiter([&] {
    waited = spawn(big, Holder, 100);
    returned = true;
  });
  // A bounded look at something that must not happen: the spawn returning
  // while nothing has exited. The test looks at the holders meanwhile and
  // says "release" on stdin when it is done.
  absl::SleepFor(absl::Milliseconds(1000));
  std::string line;
  while (std::getline(std::cin, line) && line != "release") {
  }
  Say(returned ? "spawn returned while full" : "spawn waiting while full");
  if (!holders.empty()) {
    absl::Status sent = Sender<int>(holders[0]).send(1);
    if (!sent.ok()) Fail("release holder 0", sent);
  }
  waiter.join();
  if (!waited.ok()) Fail("waiting spawn", waited.status());
  Say("waiting spawn ok");
  // Full again.
  absl::StatusOr<Pid> again = try_spawn(big, Holder, 101);
  Say(std::string("try_spawn after the waiting spawn: ") + (again.ok() ? "ok"
                                                            : absl::IsResourceExhausted(again.status())
                                                                ? "ResourceExhausted"
                                                                : again.status().ToString()));
  if (again.ok()) holders.push_back(*again);
  // Too big for any node: an error at once from both, never a wait.
  absl::StatusOr<Pid> huge = spawn(Resources{1024 * kGiB, 1.0 / 64}, Holder, 102);
  Say(std::string("spawn of 1 TiB: ") + (huge.ok()                                  ? "ok"
                                         : absl::IsResourceExhausted(huge.status()) ? "ResourceExhausted"
                                                                                    : huge.status().ToString()));
  if (huge.ok()) holders.push_back(*huge);
  // Release everyone still holding.
  for (size_t i = 1; i < holders.size(); ++i) {
    absl::Status sent = Sender<int>(holders[i]).send(1);
    if (!sent.ok()) Fail("release holder", sent);
  }
  absl::Status sent = Sender<int>(*waited).send(1);
  if (!sent.ok()) Fail("release the waited holder", sent);
  Say("done");
  return 0;
}

// ---- hold ---------------------------------------------------------------------------

void Held(Pid parent, int index) {
  Say(Where("child " + std::to_string(index)));
  absl::StatusOr<int> go = Receiver<int>(parent).recv();
  if (!go.ok()) Fail("held recv", go.status());
  absl::Status sent = Sender<int>(parent).send(index + 1);
  if (!sent.ok()) Fail("held send", sent);
}

int HoldMain(int n) {
  Say(Where("root"));
  std::vector<Pid> children;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<Pid> child = spawn(Resources{20 * kMiB, 1.0 / 64}, Held, i);
    if (!child.ok()) Fail("spawn", child.status());
    children.push_back(*child);
  }
  std::vector<Monitor> monitors;
  for (const Pid& child : children) monitors.push_back(monitor(child));
  // One thread per child, each blocked on a value from it.
  std::vector<std::thread> waiters;
  for (const Pid& child : children) {
    waiters.emplace_back([child] {
      absl::StatusOr<int> got = Receiver<int>(child).recv();
      if (got.ok()) {
        Say("got " + std::to_string(*got) + " from " + child.to_full_string());
      } else {
        Say("recv from " + child.to_full_string() + " failed: " + got.status().ToString());
      }
    });
  }
  Say("waiting on " + std::to_string(n));
  std::string line;
  while (std::getline(std::cin, line) && line != "release") {
  }
  for (const Pid& child : children) {
    absl::Status sent = Sender<int>(child).send(1);  // fails for the lost ones: fine
    (void)sent;
  }
  for (std::thread& t : waiters) t.join();
  for (const Monitor& m : monitors) Say("down " + m.pid().to_full_string() + ": " + m.wait().to_string());
  Say("root done");
  return 0;
}

std::string Uids(const std::string& who) {
  return who + " uid " + std::to_string(getuid()) + " euid " + std::to_string(geteuid());
}

void UidChild(Pid, int) { Say(Uids("child")); }

int UidMain() {
  Say(Uids("root"));
  absl::StatusOr<Pid> child = spawn(Resources{20 * kMiB, 1.0 / 64}, UidChild, 0);
  if (!child.ok()) Fail("spawn", child.status());
  return 0;
}

int EnvMain(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    const char* value = getenv(argv[i]);
    Say(value == nullptr ? std::string(argv[i]) + " unset" : std::string(argv[i]) + "=" + value);
  }
  return 0;
}

int CountMain(int n, int k) {
  for (int i = 1; i <= n; ++i) {
    if (i == k + 1) {
      std::string line;
      std::getline(std::cin, line);
    }
    Say("line " + std::to_string(i));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  init();
  std::string name = argc > 1 ? argv[1] : "";
  auto number = [&](int i, long fallback) { return argc > i ? std::strtol(argv[i], nullptr, 10) : fallback; };
  if (name == "where") return WhereMain(static_cast<int>(number(2, 3)));
  if (name == "fill") return FillMain(static_cast<uint64_t>(number(2, 512)));
  if (name == "hold") return HoldMain(static_cast<int>(number(2, 6)));
  if (name == "env") return EnvMain(argc, argv);
  if (name == "uid") return UidMain();
  if (name == "count") {
    int n = static_cast<int>(number(2, 10));
    return CountMain(n, static_cast<int>(number(3, n)));
  }
  fprintf(stderr, "cluster_programs: unknown program \"%s\"\n", name.c_str());
  return 64;
}
