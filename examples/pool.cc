// A process pool: counts the primes below 2,000,000 by sieving 20 ranges on 4
// worker processes, and prints "primes below 2000000: 148933".
#include <cstdint>
#include <iostream>
#include <vector>

#include "constellation/constellation.h"

using namespace constellation;

// The primes in [lo, hi): a sieve of the range by the primes up to sqrt(hi).
uint64_t count_primes(uint64_t lo, uint64_t hi) {
  std::vector<bool> composite(hi - lo, false);
  for (uint64_t p = 2; p * p < hi; ++p) {
    for (uint64_t m = std::max(p * p, (lo + p - 1) / p * p); m < hi; m += p) composite[m - lo] = true;
  }
  uint64_t count = 0;
  for (uint64_t n = std::max<uint64_t>(lo, 2); n < hi; ++n) count += composite[n - lo] ? 0 : 1;
  return count;
}

int main() {
  init(Resources());
  constexpr uint64_t kLimit = 2'000'000, kChunk = 100'000;
  ProcessPool pool(4, Resources());
  std::vector<Future<uint64_t>> counts;
  for (uint64_t lo = 0; lo < kLimit; lo += kChunk) counts.push_back(pool.submit(count_primes, lo, lo + kChunk));
  uint64_t total = 0;
  for (Future<uint64_t>& count : counts) {
    absl::StatusOr<uint64_t> n = count.get();
    if (!n.ok()) {
      std::cerr << "a chunk failed: " << n.status() << std::endl;
      return 1;
    }
    total += *n;
  }
  std::cout << "primes below " << kLimit << ": " << total << std::endl;
}
