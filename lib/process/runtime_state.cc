#include "lib/process/runtime_state.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace constellation::process_internal {
namespace {

std::atomic<bool> g_initialized{false};

}  // namespace

Runtime& MutableRuntime() {
  static Runtime* const state = new Runtime();  // never destroyed: exit paths may still read it
  return *state;
}

void MarkInitialized() { g_initialized.store(true, std::memory_order_release); }

bool Initialized() { return g_initialized.load(std::memory_order_acquire); }

void RequireInit(const char* api) {
  if (!Initialized()) {
    fprintf(stderr, "constellation: %s called before init(): call constellation::init() first in main()\n", api);
    fflush(stderr);
    abort();
  }
}

const Runtime& runtime() { return MutableRuntime(); }

}  // namespace constellation::process_internal
