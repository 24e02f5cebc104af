// Monitors and links (lib/process/monitors.h) in real processes: run by
// tests/local/monitor_test.cc under the local bridge, and deployed with
// cdeploy by tests/cluster/loopback_scenarios_test.cc. argv[1] names the
// scenario; the root prints what its monitors saw, one "down ..." line each
// (see Describe).
//
//   monitor_exit <code>   a child exits <code>: monitor, blocking wait
//   monitor_async <code>  the same, with co_await async_wait and select_async
//   monitor_signal        a child is killed by SIGKILL
//   monitor_oom           a child touches twice its 64 MiB
//   monitor_noprocess     a made-up pid on this process's own address
//   monitor_peer          a child this process has a channel with exits 2;
//                         then monitor it (the verdict is known already)
//   monitor_self          monitor(pid()): must abort with a message
//   link <code>           link to a child that exits <code>; with a non-zero
//                         code the root must be terminated (kLinkedExitCode)
//   trap <code>           the same after trap_exits(true): the Down arrives
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "constellation/constellation.h"

using constellation::Down;
using constellation::Monitor;
using constellation::Pid;
using constellation::Resources;

namespace {

void Say(const std::string& line) {
  printf("%s\n", line.c_str());
  fflush(stdout);
}

// "down exited 3 abnormal", "down signaled 9 abnormal", "down out_of_memory
// abnormal", "down no_process abnormal", "down node_lost abnormal", "down
// exited 0 normal"; then the Down's to_string() on a line of its own.
std::string Describe(const Down& down) {
  struct Kind {
    std::string operator()(const constellation::Exited& e) const { return "exited " + std::to_string(e.code); }
    std::string operator()(const constellation::Signaled& s) const { return "signaled " + std::to_string(s.signal); }
    std::string operator()(const constellation::OutOfMemory&) const { return "out_of_memory"; }
    std::string operator()(const constellation::NoProcess&) const { return "no_process"; }
    std::string operator()(const constellation::NodeLost&) const { return "node_lost"; }
  };
  return "down " + std::visit(Kind(), down.reason) + (down.abnormal() ? " abnormal" : " normal") + "\n" +
         down.to_string();
}

Pid MustSpawn(Resources resources, void (*fn)(Pid, int), int arg) {
  absl::StatusOr<Pid> child = constellation::spawn(resources, fn, arg);
  if (!child.ok()) {
    fprintf(stderr, "spawn failed: %s\n", child.status().ToString().c_str());
    exit(70);
  }
  return *child;
}

void ExitWith(Pid, int code) { exit(code); }
void KillSelf(Pid, int) { raise(SIGKILL); }

void Hog(Pid, int mib) {
  size_t size = 2 * static_cast<size_t>(mib) * constellation::kMiB;
  char* block = static_cast<char*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (block == MAP_FAILED) exit(71);
  for (size_t i = 0; i < size; i += 4096) block[i] = 1;
  Say("hog survived");
}

// Sends one value to its parent, then exits 2.
void SendThenFail(Pid parent, int value) {
  absl::Status sent = constellation::Sender<int>(parent).send(value);
  if (!sent.ok()) exit(72);
  exit(2);
}

constellation::Task<std::string> AwaitBoth(const Monitor& first, const Monitor& second) {
  Down a = co_await first.async_wait();
  std::string which;
  absl::StatusOr<size_t> ran =
      co_await constellation::select_async(constellation::on_down(second, [&](Down d) { which = Describe(d); }));
  co_return Describe(a) + "\nselect " + (ran.ok() ? std::to_string(*ran) : ran.status().ToString()) + "\n" + which;
}

int Scenario(const std::string& name, int arg) {
  if (name == "monitor_exit") {
    Monitor m = constellation::monitor(MustSpawn(Resources(), ExitWith, arg));
    Say(Describe(m.wait()));
    Say("again " + Describe(m.wait()));
    return 0;
  }
  if (name == "monitor_async") {
    Monitor first = constellation::monitor(MustSpawn(Resources(), ExitWith, arg));
    Monitor second = constellation::monitor(MustSpawn(Resources(), ExitWith, 0));
    Say(constellation::block_on(AwaitBoth(first, second)));
    return 0;
  }
  if (name == "monitor_signal") {
    Say(Describe(constellation::monitor(MustSpawn(Resources(), KillSelf, 0)).wait()));
    return 0;
  }
  if (name == "monitor_oom") {
    Say(Describe(constellation::monitor(MustSpawn(Resources{64 * constellation::kMiB, 0.5}, Hog, 64)).wait()));
    return 0;
  }
  if (name == "monitor_noprocess") {
    Pid self = constellation::pid();
    Say(Describe(constellation::monitor(Pid(self.addr(), self.port(), self.nonce() ^ 1)).wait()));
    return 0;
  }
  if (name == "monitor_peer") {
    Pid child = MustSpawn(Resources(), SendThenFail, 42);
    constellation::Receiver<int> from_child(child);
    absl::StatusOr<int> value = from_child.recv();
    absl::StatusOr<int> end = from_child.recv();  // ends by the verdict the data plane asked for
    Say("got " + (value.ok() ? std::to_string(*value) : value.status().ToString()) + ", then " +
        (end.ok() ? "a value" : "an error"));
    Monitor m = constellation::monitor(child);
    std::optional<Down> now = m.try_wait();
    Say(now.has_value() ? "ready at once" : "not ready at once");
    Say(Describe(m.wait()));
    return 0;
  }
  if (name == "monitor_self") {
    constellation::monitor(constellation::pid());
    Say("monitor(pid()) returned");
    return 0;
  }
  if (name == "link" || name == "trap") {
    if (name == "trap") constellation::trap_exits(true);
    Monitor m = constellation::link(MustSpawn(Resources(), ExitWith, arg));
    Say("linked");
    Down down = m.wait();  // a link not trapped ends this process before
    Say(Describe(down));
    Say("still running");
    return 0;
  }
  fprintf(stderr, "monitor_scenarios: unknown scenario %s\n", name.c_str());
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  constellation::init();
  if (argc < 2) return 64;
  return Scenario(argv[1], argc > 2 ? atoi(argv[2]) : 0);
}
