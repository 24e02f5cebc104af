// All-to-all: N processes each send one value to every other and receive one
// from every other. The top process spawns them, tells each the full list of
// pids, and collects a checksum from each.
// `bazel run //examples:all_to_all -- 8` (N defaults to 6).
#include <cstdlib>
#include <iostream>
#include <vector>

#include "constellation/constellation.h"

using namespace constellation;

void check(const absl::Status& status) {
  if (!status.ok()) {
    std::cerr << status << std::endl;
    std::exit(1);
  }
}

void member(Pid parent, size_t index) {
  std::vector<Pid> everyone = Receiver<std::vector<Pid>>(parent).recv().value();
  // Open all channels first: sends are buffered, so nobody waits on anybody.
  std::vector<std::pair<Sender<size_t>, Receiver<size_t>>> links;
  for (const Pid& other : everyone) {
    if (other == pid()) continue;
    links.emplace_back(Sender<size_t>(other), Receiver<size_t>(other));
  }
  for (auto& [sender, receiver] : links) check(sender.send(index));
  size_t sum = 0;
  for (auto& [sender, receiver] : links) sum += receiver.recv().value();
  std::cout << "member " << index << " received from " << links.size() << " others" << std::endl;
  check(Sender<size_t>(parent).send(sum));
}

int main(int argc, char** argv) {
  init(Resources());
  size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 6;
  std::vector<Pid> pids;
  for (size_t i = 0; i < n; ++i) pids.push_back(spawn(Resources(), member, i).value());
  for (const Pid& p : pids) check(Sender<std::vector<Pid>>(p).send(pids));
  size_t expected_each_total = n * (n - 1) / 2;  // sum of all indices
  bool ok = true;
  for (size_t i = 0; i < n; ++i) {
    size_t sum = Receiver<size_t>(pids[i]).recv().value();
    ok = ok && sum == expected_each_total - i;
  }
  std::cout << (ok ? "all-to-all among " : "all-to-all FAILED among ") << n << " processes" << std::endl;
  return ok ? 0 : 1;
}
