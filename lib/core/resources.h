#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace constellation {

inline constexpr uint64_t kKiB = uint64_t{1} << 10;
inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;
inline constexpr uint64_t kTiB = uint64_t{1} << 40;

// What a process asks for and is given: memory in bytes and logical cores
// (fractions allowed). A plain value type.
struct Resources {
  uint64_t mem = 100 * kMiB;
  double cpu = 1.0 / 16;

  friend bool operator==(const Resources& a, const Resources& b) { return a.mem == b.mem && a.cpu == b.cpu; }
  friend bool operator!=(const Resources& a, const Resources& b) { return !(a == b); }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(mem, cpu);
  }
};

// Parses a memory size with a binary unit: "5 GiB", "1.5GiB", "512 MiB", "100B",
// "64 KiB", "2 TiB". Fractions are allowed and rounded down to whole bytes.
// Decimal units ("5 GB"), a missing unit, a negative number or a size that does
// not fit in 64 bits are errors that say what was wrong.
absl::StatusOr<uint64_t> parse_mem(absl::string_view text);

// Parses a number of logical cores: "2", "0.5", "0.0625". Must be a finite
// number greater than zero.
absl::StatusOr<double> parse_cpu(absl::string_view text);

// "1.5 GiB", "100 MiB", "100 B": the largest binary unit that keeps the number
// at least 1, with at most two decimals. parse_mem() reads it back (exactly when
// the size is a whole number of that unit).
std::string format_mem(uint64_t bytes);

// "mem 100 MiB, cpu 0.0625".
std::string to_string(const Resources& resources);

}  // namespace constellation
