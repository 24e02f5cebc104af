#include "lib/process/malloc_tuning.h"

#include <malloc.h>

#include <cstdlib>
#include "absl/strings/string_view.h"

#include "absl/strings/str_split.h"

namespace constellation::process_internal {

bool EnvironmentSetsMallocThresholds(const char* glibc_tunables, const char* trim_threshold,
                                     const char* mmap_threshold) {
  if (trim_threshold != nullptr || mmap_threshold != nullptr) return true;
  if (glibc_tunables == nullptr) return false;
  // GLIBC_TUNABLES is name=value pairs separated by colons.
  for (absl::string_view pair : absl::StrSplit(glibc_tunables, ':')) {
    absl::string_view name = pair.substr(0, pair.find('='));
    if (name == "glibc.malloc.trim_threshold" || name == "glibc.malloc.mmap_threshold") return true;
  }
  return false;
}

void TuneMalloc() {
  if (EnvironmentSetsMallocThresholds(getenv("GLIBC_TUNABLES"), getenv("MALLOC_TRIM_THRESHOLD_"),
                                      getenv("MALLOC_MMAP_THRESHOLD_"))) {
    return;
  }
  // glibc refuses an mmap threshold above its limit (lower with huge pages,
  // glibc.malloc.hugetlb): then the trim threshold is left alone too, as
  // setting it alone would stop glibc's own rule from raising the other.
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold)) == 0) return;
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTrimThreshold));
}

}  // namespace constellation::process_internal
