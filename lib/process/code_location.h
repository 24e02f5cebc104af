#pragma once

// A code address as (module, offset): the module is the executable or the
// shared library that holds it, so the address can be found again in another
// process of the same binary whatever address-space randomisation did. How
// spawn() names the function a new process runs. Thread-safe.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace constellation::process_internal {

struct CodeLocation {
  std::string module;  // "" for the main executable
  int64_t offset = 0;
};
absl::StatusOr<CodeLocation> LocateCode(const void* address);
absl::StatusOr<const void*> ResolveCode(const CodeLocation& location);

}  // namespace constellation::process_internal
