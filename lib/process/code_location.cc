#include "lib/process/code_location.h"

#include <link.h>

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace constellation::process_internal {
namespace {

struct FindByAddress {
  uintptr_t address;
  CodeLocation found;
  bool ok = false;
};

int MatchAddress(dl_phdr_info* info, size_t, void* data) {
  auto* find = static_cast<FindByAddress*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (find->address >= start && find->address < start + ph.p_memsz) {
      find->found.module = info->dlpi_name;
      find->found.offset = static_cast<int64_t>(find->address - info->dlpi_addr);
      find->ok = true;
      return 1;
    }
  }
  return 0;
}

struct FindByName {
  const std::string* module;
  uintptr_t base = 0;
  bool ok = false;
};

int MatchName(dl_phdr_info* info, size_t, void* data) {
  auto* find = static_cast<FindByName*>(data);
  if (*find->module != info->dlpi_name) return 0;
  find->base = info->dlpi_addr;
  find->ok = true;
  return 1;
}

}  // namespace

absl::StatusOr<CodeLocation> LocateCode(const void* address) {
  FindByAddress find{reinterpret_cast<uintptr_t>(address), {}};
  dl_iterate_phdr(MatchAddress, &find);
  if (!find.ok) return absl::InvalidArgumentError("spawn(): function is not in any loaded module");
  return find.found;
}

absl::StatusOr<const void*> ResolveCode(const CodeLocation& location) {
  FindByName find{&location.module};
  dl_iterate_phdr(MatchName, &find);
  if (!find.ok) return absl::NotFoundError(absl::StrCat("module \"", location.module, "\" is not loaded"));
  return reinterpret_cast<const void*>(find.base + location.offset);
}

}  // namespace constellation::process_internal
