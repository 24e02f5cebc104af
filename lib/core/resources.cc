#include "lib/core/resources.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace constellation {
namespace {

constexpr std::pair<absl::string_view, uint64_t> kUnits[] = {
    {"B", 1}, {"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB}, {"TiB", kTiB}, {"PiB", kTiB* kKiB},
};

absl::Status MemError(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad memory size \"", text, "\": ", why,
                                                 " (write e.g. \"512 MiB\", \"1.5 GiB\"; units B, KiB, "
                                                 "MiB, GiB, TiB, PiB)"));
}

absl::StatusOr<uint64_t> UnitSize(absl::string_view text, absl::string_view unit) {
  for (const auto& [name, size] : kUnits) {
    if (unit == name) return size;
  }
  for (const auto& [name, size] : kUnits) {
    // "GB", "gb", "Gib": close to a binary unit but not one; say which was meant.
    if (name.size() == 3 && unit.size() >= 2 && absl::ascii_toupper(unit[0]) == name[0] &&
        absl::ascii_tolower(unit.back()) == 'b') {
      return MemError(text, absl::StrCat("unit \"", unit, "\" is not a binary unit; did you mean \"", name, "\"?"));
    }
  }
  return MemError(text, unit.empty() ? "no unit" : absl::StrCat("unknown unit \"", unit, "\""));
}

}  // namespace

absl::StatusOr<uint64_t> parse_mem(absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    return MemError(text, s[0] == '-' ? "negative" : "sign not allowed");
  }
  size_t i = 0;
  unsigned __int128 whole = 0;
  for (; i < s.size() && absl::ascii_isdigit(s[i]); ++i) {
    whole = whole * 10 + (s[i] - '0');
    if (whole > ~uint64_t{0}) return MemError(text, "too large for 64 bits");
  }
  size_t int_digits = i;
  // The fraction as an exact ratio frac / scale, at most 18 digits (more cannot
  // change a byte count of a unit no larger than PiB).
  uint64_t frac = 0, scale = 1;
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && absl::ascii_isdigit(s[i]); ++i, ++frac_digits) {
      if (frac_digits < 18) {
        frac = frac * 10 + (s[i] - '0');
        scale *= 10;
      }
    }
  }
  if (int_digits == 0 && frac_digits == 0) return MemError(text, "no number");
  absl::string_view unit = absl::StripLeadingAsciiWhitespace(s.substr(i));
  absl::StatusOr<uint64_t> unit_size = UnitSize(text, unit);
  if (!unit_size.ok()) return unit_size.status();

  unsigned __int128 bytes = whole * *unit_size + static_cast<unsigned __int128>(frac) * *unit_size / scale;
  if (bytes > ~uint64_t{0}) return MemError(text, "too large for 64 bits");
  return static_cast<uint64_t>(bytes);
}

absl::StatusOr<double> parse_cpu(absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  double cpu = 0;
  if (s.empty() || !absl::SimpleAtod(s, &cpu) || !std::isfinite(cpu)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad cpu count \"", text, "\": expected a number of logical cores such as \"2\" or \"0.5\""));
  }
  if (cpu <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad cpu count \"", text, "\": must be greater than 0"));
  }
  return cpu;
}

std::string format_mem(uint64_t bytes) {
  size_t unit = 0;
  while (unit + 1 < std::size(kUnits) && bytes >= kUnits[unit + 1].second) ++unit;
  const auto& [name, size] = kUnits[unit];
  if (bytes % size == 0) return absl::StrCat(bytes / size, " ", name);
  std::string number = absl::StrFormat("%.2f", static_cast<double>(bytes) / size);
  while (number.back() == '0') number.pop_back();
  if (number.back() == '.') number.pop_back();
  return absl::StrCat(number, " ", name);
}

std::string to_string(const Resources& resources) {
  return absl::StrCat("mem ", format_mem(resources.mem), ", cpu ", resources.cpu);
}

}  // namespace constellation
