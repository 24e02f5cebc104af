// A program for zygote_integration_test: its root spawns two children, one
// with the environment init() saw (forked by the zygote unless
// CONSTELLATION_ZYGOTE=off) and one after changing it (re-executed), and
// checks that both start from the same state a fresh exec reaches at init():
// globals as main() set them before init(), fds opened before init() open and
// fds opened after it absent, stdin on /dev/null, the program's signal
// handlers in place with SIGCHLD at its default. Exits 0 when everything
// holds, else prints what did not to stderr and exits 1. With --warm-up it
// spawns one child before (on a node, the one executed before its zygote
// starts).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "constellation/constellation.h"

namespace {

constexpr int kBeforeInitFd = 700;  // opened by main() before init()
constexpr int kAfterInitFd = 701;   // opened by the root after init()

int g_state = 0;

void OnUsr1(int) {}

std::string FdTarget(int fd) {
  char buf[256];
  ssize_t n = readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return "closed";
  return std::string(buf, n);
}

// The parent of `pid`'s parent: for a spawned process, who started its monitor.
int ParentOf(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  char state;
  int ppid = -1;
  sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid);
  return ppid;
}

std::string Describe() {
  struct sigaction usr1 {
  }, chld{};
  sigaction(SIGUSR1, nullptr, &usr1);
  sigaction(SIGCHLD, nullptr, &chld);
  sigset_t mask;
  sigprocmask(SIG_SETMASK, nullptr, &mask);
  const char* var = getenv("ZYGOTE_TEST_VAR");
  return absl::StrCat("state=", g_state, " before_fd=", FdTarget(kBeforeInitFd), " after_fd=", FdTarget(kAfterInitFd),
                      " stdin=", FdTarget(0), " usr1=", usr1.sa_handler == &OnUsr1 ? "handler" : "other",
                      " chld=", chld.sa_handler == SIG_DFL && (chld.sa_flags & SA_NOCLDWAIT) == 0 ? "default" : "other",
                      " usr2_blocked=", sigismember(&mask, SIGUSR2), " var=", var == nullptr ? "unset" : var);
}

void Report(constellation::Pid parent) {
  std::string report = absl::StrCat(Describe(), " starter=", ParentOf(getppid()));
  if (!constellation::Sender<std::string>(parent).send(report).ok()) _exit(3);
}

std::string Ask(const char* what) {
  absl::StatusOr<constellation::Pid> child = constellation::spawn(constellation::Resources(), Report);
  if (!child.ok()) {
    fprintf(stderr, "spawn %s: %s\n", what, child.status().ToString().c_str());
    exit(1);
  }
  absl::StatusOr<std::string> report = constellation::Receiver<std::string>(*child).recv();
  if (!report.ok()) {
    fprintf(stderr, "recv %s: %s\n", what, report.status().ToString().c_str());
    exit(1);
  }
  return *report;
}

}  // namespace

int main(int argc, char** argv) {
  g_state = 1;
  int fd = open("/dev/null", O_RDONLY);
  dup2(fd, kBeforeInitFd);
  close(fd);
  signal(SIGUSR1, OnUsr1);
  constellation::init();
  g_state = 2;  // a spawned process starts from init(), where this is 1
  fd = open("/dev/null", O_RDONLY);
  dup2(fd, kAfterInitFd);
  close(fd);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr2, nullptr);

  const int bridge = ParentOf(getppid());  // the root's monitor was forked by the bridge
  const char* mode = getenv("CONSTELLATION_ZYGOTE");
  const bool zygote = mode == nullptr || std::string(mode) != "off";
  const std::string same = absl::StrCat(
      "state=1 before_fd=/dev/null after_fd=closed stdin=/dev/null usr1=handler chld=default usr2_blocked=0");
  int failures = 0;
  auto expect = [&](const std::string& what, const std::string& got, const std::string& want_env, bool by_zygote) {
    std::string want = absl::StrCat(same, " var=", want_env, " starter=");
    bool ok = got.rfind(want, 0) == 0;
    int starter = atoi(got.c_str() + (ok ? want.size() : 0));
    if (ok && (starter == bridge) == by_zygote) ok = false;
    if (!ok) {
      fprintf(stderr, "%s: got \"%s\", want \"%s%s\"\n", what.c_str(), got.c_str(), want.c_str(),
              by_zygote ? "<the zygote>" : absl::StrCat(bridge, " (the bridge)").c_str());
      ++failures;
    }
  };
  // On a node the deployment's first spawned function is executed and its
  // zygote starts after it: --warm-up spawns that one first.
  if (argc > 1 && std::string(argv[1]) == "--warm-up") Ask("warm-up");
  expect("same environment", Ask("same environment"), "unset", zygote);
  setenv("ZYGOTE_TEST_VAR", "changed", 1);
  expect("changed environment", Ask("changed environment"), "changed", false);
  return failures == 0 ? 0 : 1;
}
