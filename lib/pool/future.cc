#include "lib/pool/future.h"

#include <cstdio>
#include <cstdlib>

namespace constellation::pool_internal {

void AbortOnEmptyFuture() {
  std::fprintf(stderr,
               "constellation: a default-constructed Future was read; only ProcessPool::submit() makes one with a "
               "task\n");
  std::abort();
}

}  // namespace constellation::pool_internal
