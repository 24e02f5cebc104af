// The smallest Constellation program.
#include <iostream>

#include "constellation/constellation.h"

int main() {
  constellation::Resources resources;
  std::cout << "hello from constellation (" << constellation::to_string(resources) << ")\n";
  return 0;
}
