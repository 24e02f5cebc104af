// Recursive fibonacci with coroutines: as //examples:fibonacci, one process
// per call, but each process waits for its two children's values at once
// (when_all of two async_recv) on its one thread, instead of one after the
// other. Prints "fibonacci(10) = 55". `bazel run //examples:fibonacci_async -- 12`
// for another n.
#include <cstdlib>
#include <iostream>

#include "constellation/constellation.h"

using namespace constellation;

Task<absl::StatusOr<uint64_t>> fibonacci(uint64_t n);

void compute(Pid parent, uint64_t n) {
  absl::StatusOr<uint64_t> value = block_on(fibonacci(n));
  if (!value.ok()) {
    std::cerr << "fibonacci(" << n << "): " << value.status() << std::endl;
    std::exit(1);  // the parent's receive names this exit
  }
  Sender<uint64_t>(parent).send(*value).IgnoreError();
}

// The value a child sends back, or why it never came.
Task<absl::StatusOr<uint64_t>> receive(Pid child) {
  Receiver<uint64_t> from(child);
  co_return co_await from.async_recv();
}

Task<absl::StatusOr<uint64_t>> fibonacci(uint64_t n) {
  if (n <= 1) co_return n;
  Resources small{20 * kMiB, 1.0 / 64};
  absl::StatusOr<Pid> left = spawn(small, compute, n - 1);
  if (!left.ok()) co_return left.status();
  absl::StatusOr<Pid> right = spawn(small, compute, n - 2);
  if (!right.ok()) co_return right.status();
  // Both children's values, whichever comes first.
  auto [a, b] = co_await when_all(receive(*left), receive(*right));
  if (!a.ok()) co_return a.status();
  if (!b.ok()) co_return b.status();
  co_return *a + *b;
}

int main(int argc, char** argv) {
  init(Resources());
  uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10;
  absl::StatusOr<uint64_t> value = block_on(fibonacci(n));
  if (!value.ok()) {
    std::cerr << "fibonacci(" << n << ") failed: " << value.status() << std::endl;
    return 1;
  }
  std::cout << "fibonacci(" << n << ") = " << *value << std::endl;
}
