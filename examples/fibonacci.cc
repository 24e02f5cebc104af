// Recursive fibonacci, one process per call (the seeds' example): each
// process spawns two children for n-1 and n-2 and adds what they send back.
// Prints "fibonacci(10) = 55". `bazel run //examples:fibonacci -- 12` for another n.
#include <cstdlib>
#include <iostream>

#include "constellation/constellation.h"

using namespace constellation;

uint64_t fibonacci(uint64_t n);

void compute(Pid parent, uint64_t n) {
  Sender<uint64_t>(parent).send(fibonacci(n)).IgnoreError();  // the parent reports a missing value
}

uint64_t fibonacci(uint64_t n) {
  if (n <= 1) return n;
  Resources small{20 * kMiB, 1.0 / 64};
  Pid left = spawn(small, compute, n - 1).value();
  Pid right = spawn(small, compute, n - 2).value();
  absl::StatusOr<uint64_t> a = Receiver<uint64_t>(left).recv();
  absl::StatusOr<uint64_t> b = Receiver<uint64_t>(right).recv();
  if (!a.ok() || !b.ok()) {
    std::cerr << "a child failed: " << (a.ok() ? b.status() : a.status()) << std::endl;
    std::exit(1);
  }
  return *a + *b;
}

int main(int argc, char** argv) {
  init(Resources());
  uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10;
  std::cout << "fibonacci(" << n << ") = " << fibonacci(n) << std::endl;
}
