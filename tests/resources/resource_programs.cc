// Test programs for the resource tests (tests/resources/*_test.cc). argv[1]
// names the program; spawned processes re-execute this binary with the same
// argv, so they see the same argv[1].
//
//   where            the root spawns a child with 64 MiB and 0.25 cpu, a second
//                    ("same") with those too and a third ("other") with 80 MiB
//                    and 0.5 cpu; each prints "<who> resources <mem> <cpu>" (resources()) and
//                    "<who> cgroup memory=<dir> cpu=<dir>" (from
//                    /proc/self/cgroup), then the limits found there:
//                    "<who> limits mem=<bytes> quota=<us> period=<us>", and
//                    "<who> rlimit data=<bytes|unlimited>".
//   oom <limit_mib>  the root spawns a hog (limit_mib MiB) that touches twice
//                    its limit, and two siblings that each send the root a
//                    value after the hog was killed; prints "sibling <i> ok"
//                    for each, "hog: <recv status>", and "monitor: <Down>"
//                    from its monitor of the hog.
//   spin <cpu>       the root spawns a spinner with <cpu> cores that spins for
//                    one second of wall time and prints
//                    "cpu fraction <cpu seconds / wall seconds>".
//   capacity         (run with CONSTELLATION_CAPACITY="1 GiB,4") the root
//                    (init 256 MiB) try_spawns 256 MiB holders until
//                    ResourceExhausted, then spawn() waits for a holder to be
//                    told to exit. Prints what happened, line by line.
//   reference        (with CONSTELLATION_CAPACITY="2 GiB,2") 49 processes of
//                    1 GiB and 0.5 GiB: see ReferenceMain.
//   waitforever      (with CONSTELLATION_CAPACITY="150 MiB,1") the root
//                    spawn()s a 100 MiB child that could only fit if the root
//                    exited; prints the error.
//   bigargs          try_spawn with 61 MiB of arguments (refused: over the
//                    limit), then with 1 MiB (fine); prints both outcomes.
//   block            the root spawns a child that prints "child up" and then
//                    blocks on stdin-less recv forever (for killing the bridge).
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "constellation/constellation.h"

using namespace constellation;

namespace {

void Say(const std::string& line) {
  printf("%s\n", line.c_str());
  fflush(stdout);
}

[[noreturn]] void Fail(const std::string& what, const absl::Status& status) {
  fprintf(stderr, "%s: %s\n", what.c_str(), status.ToString().c_str());
  exit(3);
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

// The cgroup directory of this process in the hierarchy with `controller`.
std::string CgroupDir(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    for (absl::string_view c : absl::StrSplit(parts[1], ',')) {
      if (c == controller) return "/sys/fs/cgroup/" + controller + parts[2];
    }
  }
  return "";
}

void Describe(const std::string& who) {
  Resources r = resources();
  Say(absl::StrCat(who, " resources ", r.mem, " ", r.cpu));
  std::string mem = CgroupDir("memory"), cpu = CgroupDir("cpu");
  Say(absl::StrCat(who, " cgroup memory=", mem, " cpu=", cpu));
  Say(absl::StrCat(who, " limits mem=", Read(mem + "/memory.limit_in_bytes"),
                   " quota=", Read(cpu + "/cpu.cfs_quota_us"), " period=", Read(cpu + "/cpu.cfs_period_us")));
  rlimit data{};
  getrlimit(RLIMIT_DATA, &data);
  Say(absl::StrCat(
      who, " rlimit data=", data.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : absl::StrCat(data.rlim_cur)));
}

void WhereChild(Pid, std::string who) { Describe(who); }

// Three children: with spares (docs/process-model.md) the second's leaf was
// limited ahead with the first's resources, which it asks too; the third
// asks others than its spare guessed.
int WhereMain() {
  Describe("root");
  for (auto [who, resources] :
       {std::pair{"child", Resources{64 * kMiB, 0.25}}, std::pair{"same", Resources{64 * kMiB, 0.25}},
        std::pair{"other", Resources{80 * kMiB, 0.5}}}) {
    absl::StatusOr<Pid> child = spawn(resources, WhereChild, std::string(who));
    if (!child.ok()) Fail("spawn", child.status());
  }
  return 0;
}

// ---- oom ----------------------------------------------------------------------

void Hog(Pid parent, uint64_t limit) {
  // Touch every page of twice the limit: the kernel must kill this process.
  size_t size = 2 * limit;
  char* block = static_cast<char*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (block == MAP_FAILED) Fail("mmap", absl::ErrnoToStatus(errno, "mmap"));
  for (size_t i = 0; i < size; i += 4096) block[i] = 1;
  Say("hog survived");
  Sender<int>(parent).send(-1).IgnoreError();
}

void Sibling(Pid parent, int index) {
  // Lives through the hog's death, then reports.
  absl::SleepFor(absl::Milliseconds(200));
  absl::Status sent = Sender<int>(parent).send(index);
  if (!sent.ok()) Fail("sibling send", sent);
}

int OomMain(uint64_t limit_mib) {
  std::vector<Pid> siblings;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Pid> s = spawn(Resources{32 * kMiB, 0.1}, Sibling, i);
    if (!s.ok()) Fail("spawn sibling", s.status());
    siblings.push_back(*s);
  }
  absl::StatusOr<Pid> hog = spawn(Resources{limit_mib * kMiB, 0.5}, Hog, limit_mib * kMiB);
  if (!hog.ok()) Fail("spawn hog", hog.status());
  Monitor hog_monitor = monitor(*hog);
  absl::StatusOr<int> from_hog = Receiver<int>(*hog).recv();
  Say(absl::StrCat("hog: ", from_hog.ok() ? absl::StrCat("sent ", *from_hog) : from_hog.status().ToString()));
  for (size_t i = 0; i < siblings.size(); ++i) {
    absl::StatusOr<int> got = Receiver<int>(siblings[i]).recv();
    if (!got.ok()) Fail("recv sibling", got.status());
    Say(absl::StrCat("sibling ", *got, " ok"));
  }
  Say("monitor: " + hog_monitor.wait().to_string());
  return 0;
}

// ---- spin ---------------------------------------------------------------------

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

void Spinner(Pid) {
  absl::Time start = absl::Now();
  double cpu_start = CpuSeconds();
  volatile uint64_t sink = 0;
  while (absl::Now() - start < absl::Seconds(1)) {
    for (int i = 0; i < 10000; ++i) sink = sink + i;
  }
  double wall = absl::ToDoubleSeconds(absl::Now() - start);
  Say(absl::StrCat("cpu fraction ", (CpuSeconds() - cpu_start) / wall));
}

int SpinMain(double cpu) {
  absl::StatusOr<Pid> child = spawn(Resources{64 * kMiB, cpu}, Spinner);
  if (!child.ok()) Fail("spawn", child.status());
  return 0;
}

// ---- capacity and reference -----------------------------------------------------

// Stays alive (holding its room) until its parent sends it a value.
void Holder(Pid parent, int index) {
  Say(absl::StrCat("holder ", index, " up"));
  absl::StatusOr<int> got = Receiver<int>(parent).recv();
  if (!got.ok()) Fail("holder recv", got.status());
  Say(absl::StrCat("holder ", index, " told to exit"));
}

std::string Outcome(const absl::StatusOr<Pid>& spawned) {
  if (spawned.ok()) return "ok";
  return absl::IsResourceExhausted(spawned.status()) ? "ResourceExhausted" : spawned.status().ToString();
}

void Release(const Pid& holder) {
  absl::Status sent = Sender<int>(holder).send(1);
  if (!sent.ok()) Fail("release", sent);
}

int CapacityMain() {
  Resources holder{256 * kMiB, 0.25};
  std::vector<Pid> holders;
  while (true) {
    absl::Time start = absl::Now();
    absl::StatusOr<Pid> child = try_spawn(holder, Holder, static_cast<int>(holders.size()));
    int64_t ms = absl::ToInt64Milliseconds(absl::Now() - start);
    if (!child.ok()) {
      Say(absl::StrCat("placed ", holders.size()));
      Say(absl::StrCat("try_spawn failed: ", Outcome(child), " in ", ms, " ms"));
      break;
    }
    holders.push_back(*child);
    if (holders.size() > 16) Fail("try_spawn", absl::InternalError("never ran out of room"));
  }
  std::atomic<bool> returned{false};
  absl::StatusOr<Pid> waited = absl::UnknownError("not yet");
  std::thread waiter([&] {
    waited = spawn(holder, Holder, 100);
    returned = true;
  });
  absl::SleepFor(absl::Milliseconds(500));  // a bounded look at what must not happen
  Say(returned ? "spawn returned while full" : "spawn waiting while full");
  // Another thread's waiting spawn() does not hold up this one's try_spawn.
  absl::Time start = absl::Now();
  absl::StatusOr<Pid> meanwhile = try_spawn(holder, Holder, 200);
  Say(absl::StrCat("try_spawn while a spawn waits: ", Outcome(meanwhile), " in ",
                   absl::ToInt64Milliseconds(absl::Now() - start), " ms"));
  Release(holders[0]);
  waiter.join();
  Say(absl::StrCat("waiting spawn: ", Outcome(waited)));
  Say(absl::StrCat("try_spawn when full again: ", Outcome(try_spawn(holder, Holder, 101))));
  Say(absl::StrCat("spawn of 2 GiB: ", Outcome(spawn(Resources{2 * kGiB, 0.25}, Holder, 102))));
  for (size_t i = 1; i < holders.size(); ++i) Release(holders[i]);
  if (waited.ok()) Release(*waited);
  Say("done");
  return 0;
}

void Worker(Pid parent, int index) {
  Say(absl::StrCat("worker ", index, " mem ", resources().mem));
  absl::SleepFor(absl::Milliseconds(20));
  absl::Status sent = Sender<int>(parent).send(index);
  if (!sent.ok()) Fail("worker send", sent);
}

// The reference resource-limit scenario: 2 GiB of capacity, a 512 MiB root,
// processes of 1 GiB and 0.5 GiB. try_spawn fills it (1 GiB, 0.5 GiB) and
// fails exactly then; once those two are released, 46 workers of alternating
// sizes go through spawn(), which waits for room as they come and go. 49
// processes in all.
int ReferenceMain() {
  const Resources sizes[2] = {{kGiB, 0.25}, {kGiB / 2, 0.25}};
  std::vector<Pid> holders;
  for (int i = 0;; ++i) {
    absl::StatusOr<Pid> child = try_spawn(sizes[i % 2], Holder, i);
    if (!child.ok()) {
      Say(absl::StrCat("placed ", holders.size(), ", then ", Outcome(child)));
      break;
    }
    holders.push_back(*child);
    if (holders.size() > 8) Fail("try_spawn", absl::InternalError("never ran out of room"));
  }
  Say(absl::StrCat("try_spawn of 0.5 GiB when full: ", Outcome(try_spawn(sizes[1], Holder, 99))));
  for (const Pid& h : holders) Release(h);
  std::vector<Pid> workers;
  for (int i = 0; i < 46; ++i) {
    absl::StatusOr<Pid> child = spawn(sizes[i % 2], Worker, i);
    if (!child.ok()) Fail("spawn worker", child.status());
    workers.push_back(*child);
  }
  int sum = 0;
  for (const Pid& w : workers) {
    absl::StatusOr<int> got = Receiver<int>(w).recv();
    if (!got.ok()) Fail("recv worker", got.status());
    sum += *got;
  }
  Say(absl::StrCat("workers ", workers.size(), " sum ", sum));
  return 0;
}

// ---- bigargs -----------------------------------------------------------------

void TakesBytes(Pid, std::string bytes) { Say(absl::StrCat("got ", bytes.size(), " bytes")); }

// A spawn request over the 60 MiB limit is refused with an error; the
// process that made it carries on and spawns again.
int BigArgsMain() {
  absl::StatusOr<Pid> big = try_spawn(Resources{64 * kMiB, 0.1}, TakesBytes, std::string(61 << 20, 'x'));
  Say(absl::StrCat(
      "61 MiB of arguments: ",
      big.ok() ? "ok" : absl::StrCat(absl::StatusCodeToString(big.status().code()), ": ", big.status().message())));
  absl::StatusOr<Pid> small = try_spawn(Resources{64 * kMiB, 0.1}, TakesBytes, std::string(1 << 20, 'x'));
  Say(absl::StrCat("1 MiB of arguments: ", Outcome(small)));
  return 0;
}

// ---- waitforever, block -------------------------------------------------------

void Nothing(Pid) {}

int WaitForeverMain() {
  Say(absl::StrCat("spawn: ", Outcome(spawn(Resources(), Nothing))));
  return 0;
}

void Blocked(Pid parent) {
  Say("child up");
  Receiver<int>(parent).recv().IgnoreError();
}

int BlockMain() {
  absl::StatusOr<Pid> child = spawn(Resources{64 * kMiB, 0.1}, Blocked);
  if (!child.ok()) Fail("spawn", child.status());
  Receiver<int>(*child).recv().IgnoreError();
  return 0;
}

Resources RootResources(const std::string& program) {
  if (program == "capacity") return Resources{256 * kMiB, 0.25};
  if (program == "reference") return Resources{512 * kMiB, 0.25};
  if (program == "where") return Resources{48 * kMiB, 0.5};
  if (program == "bigargs") return Resources{512 * kMiB, 0.5};
  return Resources();
}

}  // namespace

int main(int argc, char** argv) {
  std::string program = argc > 1 ? argv[1] : "";
  init(RootResources(program));
  if (program == "where") return WhereMain();
  if (program == "oom" && argc > 2) return OomMain(std::strtoull(argv[2], nullptr, 10));
  if (program == "spin" && argc > 2) return SpinMain(std::strtod(argv[2], nullptr));
  if (program == "capacity") return CapacityMain();
  if (program == "reference") return ReferenceMain();
  if (program == "waitforever") return WaitForeverMain();
  if (program == "block") return BlockMain();
  if (program == "bigargs") return BigArgsMain();
  fprintf(stderr, "usage: %s where|oom <mib>|spin <cpu>|capacity|reference|waitforever|block\n", argv[0]);
  return 2;
}
