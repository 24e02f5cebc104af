#pragma once

// glibc malloc's thresholds for a program's processes, set by init() before
// any thread starts (docs/process-model.md, "What a process starts with").
//
// A Receiver hands a big string over in the buffer the data plane read it
// into (lib/core/channel_value.h), so the data plane allocates a fresh buffer
// for each big value and the program frees it, often on another thread. With
// glibc's default, dynamic thresholds, such buffers are returned to the
// kernel at a free and faulted in again at the next value (the top of the
// arena passes the trim threshold once two of them lie there free): 2.3 times
// the page faults of copying each value, and slower. init() therefore sets
// the thresholds that glibc's own rule reaches once a program has freed one
// 32 MiB block: blocks up to 32 MiB come from the heap (M_MMAP_THRESHOLD),
// and an arena gives memory back once 64 MiB lie free at its top
// (M_TRIM_THRESHOLD). A program that sets either threshold itself, in
// GLIBC_TUNABLES or MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_, keeps
// its own, and malloc_trim(0) still gives free memory back at any time.

#include <cstddef>

namespace constellation::process_internal {

inline constexpr size_t kMmapThreshold = size_t{32} << 20;
inline constexpr size_t kTrimThreshold = size_t{64} << 20;

// Whether the environment sets either threshold (each argument is that
// variable's value, or null when unset).
bool EnvironmentSetsMallocThresholds(const char* glibc_tunables, const char* trim_threshold,
                                     const char* mmap_threshold);

// Sets both thresholds unless the process's environment sets either, or
// glibc refuses the mmap threshold (its limit is lower with huge pages): then
// neither, as a trim threshold set alone stops glibc raising the other.
// Call before any thread starts; forked children inherit the setting.
void TuneMalloc();

}  // namespace constellation::process_internal
