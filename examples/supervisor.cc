// A supervisor, Erlang style: the root runs a worker process and monitors it;
// when the worker crashes, the supervisor starts a fresh one, up to a
// bound. Here the first two workers crash (one exits with code 3, one
// aborts), the third does the work. Prints, last:
//   supervisor: worker 3 finished after 2 restarts: 4950
// The program still exits with code 3: a program's exit code is its first
// failure's, supervised or not (README), so the failures are not hidden.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <variant>

#include "absl/strings/str_cat.h"
#include "constellation/constellation.h"

using namespace constellation;

constexpr int kMaxRestarts = 5;

// A worker with a bug that shows up in its first two lives.
void worker(Pid supervisor, int incarnation) {
  if (incarnation == 1) std::exit(3);
  if (incarnation == 2) std::abort();
  int sum = 0;
  for (int i = 0; i < 100; ++i) sum += i;
  Sender<int>(supervisor).send(sum).IgnoreError();
}

// How a worker ended, without its pid (which differs from run to run).
std::string HowItEnded(const Down& down) {
  struct Text {
    std::string operator()(const Exited& e) const { return absl::StrCat("exited with code ", e.code); }
    std::string operator()(const Signaled& s) const { return absl::StrCat("was killed by signal ", s.signal); }
    std::string operator()(const OutOfMemory&) const { return "ran out of memory"; }
    std::string operator()(const NoProcess&) const { return "never existed"; }
    std::string operator()(const NodeLost&) const { return "was lost with its node"; }
  };
  return std::visit(Text{}, down.reason);
}

Task<absl::Status> supervise() {
  const Resources small{20 * kMiB, 1.0 / 16};
  for (int incarnation = 1; incarnation <= 1 + kMaxRestarts; ++incarnation) {
    absl::StatusOr<Pid> child = spawn(small, worker, incarnation);
    if (!child.ok()) co_return child.status();
    Monitor monitor_child = monitor(*child);
    Receiver<int> result(*child);
    // The monitor says how it ended; a worker that ended well sent its result first.
    Down down = co_await monitor_child.async_wait();
    if (down.abnormal()) {
      std::cout << "worker " << incarnation << " " << HowItEnded(down) << ": restarting" << std::endl;
      continue;
    }
    absl::StatusOr<int> sum = co_await result.async_recv();
    if (!sum.ok()) co_return sum.status();
    std::cout << "supervisor: worker " << incarnation << " finished after " << incarnation - 1 << " restarts: " << *sum
              << std::endl;
    co_return absl::OkStatus();
  }
  co_return absl::UnavailableError(absl::StrCat("the worker crashed ", 1 + kMaxRestarts, " times: giving up"));
}

int main() {
  init(Resources());
  absl::Status status = block_on(supervise());
  if (!status.ok()) {
    std::cerr << "supervisor: " << status << std::endl;
    return 1;
  }
}
