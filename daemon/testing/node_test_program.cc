// Launched by daemon/node_service_test.cc through a real NodeService.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "constellation/constellation.h"

int main(int argc, char** argv) {
  constellation::init();
  printf("up\n");
  fflush(stdout);
  if (argc > 1 && std::string(argv[1]) == "exit") return 3;
  while (true) pause();  // until a signal ends it
}
