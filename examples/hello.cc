// The smallest Constellation program: the top process spawns one child and
// both say hello. Run it with `bazel run //examples:hello`; set
// CONSTELLATION_FORMAT=json for machine-readable output.
#include <iostream>
#include <string>

#include "constellation/constellation.h"

using constellation::Pid;

void greet(Pid parent, std::string name) {
  std::cout << "hello from " << name << " (" << constellation::pid().to_string() << "), spawned by "
            << parent.to_string() << "\n";
}

int main() {
  constellation::init();
  std::cout << "hello from the top process " << constellation::pid().to_string() << "\n";
  auto child = constellation::spawn(constellation::Resources(), greet, std::string("a child"));
  if (!child.ok()) {
    std::cerr << "spawn failed: " << child.status() << "\n";
    return 1;
  }
  return 0;
}
