// Uses Constellation from a workspace of its own: spawns four workers, sends
// each the numbers 1..n over a channel, and adds up the sums they send back.
// Prints "sums 1 3 6 10, total 20".
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "constellation/constellation.h"

using namespace constellation;

// Receives a list of numbers from the parent and answers with their sum.
void adder(Pid parent) {
  absl::StatusOr<std::vector<int>> numbers = Receiver<std::vector<int>>(parent).recv();
  if (!numbers.ok()) {
    std::cerr << "adder: " << numbers.status() << std::endl;
    return;
  }
  Sender<int>(parent).send(std::accumulate(numbers->begin(), numbers->end(), 0)).IgnoreError();
}

int main() {
  init(Resources());
  constexpr int kWorkers = 4;
  std::vector<Pid> workers;
  for (int i = 0; i < kWorkers; ++i) {
    absl::StatusOr<Pid> pid = spawn(Resources(), adder);
    if (!pid.ok()) {
      std::cerr << "spawn: " << pid.status() << std::endl;
      return 1;
    }
    workers.push_back(*pid);
  }
  std::string sums;
  int total = 0;
  for (int i = 0; i < kWorkers; ++i) {
    std::vector<int> numbers(i + 1);
    std::iota(numbers.begin(), numbers.end(), 1);
    absl::Status sent = Sender<std::vector<int>>(workers[i]).send(numbers);
    absl::StatusOr<int> sum = Receiver<int>(workers[i]).recv();
    if (!sent.ok() || !sum.ok()) {
      std::cerr << "worker " << i << ": " << (sent.ok() ? sum.status() : sent) << std::endl;
      return 1;
    }
    sums += (i == 0 ? "" : " ") + std::to_string(*sum);
    total += *sum;
  }
  std::cout << "sums " << sums << ", total " << total << std::endl;
}
