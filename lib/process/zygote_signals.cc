#include "lib/process/zygote_signals.h"

#include <signal.h>

namespace constellation::process_internal {
namespace {

// The signals the zygote handles differently from the program (kept away
// from a terminal's Ctrl-C and from the program's own handlers, which must
// not run in the zygote). Children get the program's dispositions back.
struct SavedSignals {
  struct sigaction action[NSIG];
  bool changed[NSIG] = {};
};

SavedSignals& Saved() {
  static SavedSignals saved;
  return saved;
}

void Change(int signo, void (*handler)(int), int flags) {
  SavedSignals& saved = Saved();
  struct sigaction action {};
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  if (sigaction(signo, &action, &saved.action[signo]) == 0) saved.changed[signo] = true;
}

}  // namespace

void EnterZygoteSignals() {
  for (int signo = 1; signo < NSIG; ++signo) {
    if (signo == SIGKILL || signo == SIGSTOP || signo == SIGCHLD) continue;
    struct sigaction current {};
    if (sigaction(signo, nullptr, &current) != 0) continue;  // glibc's reserved signals
    bool handled =
        (current.sa_flags & SA_SIGINFO) != 0 || (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN);
    if (signo == SIGINT || signo == SIGHUP || signo == SIGQUIT) {
      Change(signo, SIG_IGN, 0);
    } else if (handled) {
      Change(signo, SIG_DFL, 0);
    }
  }
  Change(SIGCHLD, SIG_DFL, SA_NOCLDWAIT);
}

void RestoreProgramSignals() {
  SavedSignals& saved = Saved();
  for (int signo = 1; signo < NSIG; ++signo) {
    if (!saved.changed[signo]) continue;
    struct sigaction action = saved.action[signo];
    if (signo == SIGCHLD && (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_IGN) {
      action.sa_handler = SIG_DFL;
    }
    if (signo == SIGCHLD) action.sa_flags &= ~SA_NOCLDWAIT;
    sigaction(signo, &action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

void EnterSpareSignals() {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(SIGCHLD, &action, nullptr);
}

}  // namespace constellation::process_internal
