#pragma once

// A parser for one flat JSON object, enough for the bridge's JSON output
// format (DESIGN.md "Output formats"): string, integer and boolean values, no
// arrays or nested objects, no duplicate keys, nothing after the object.

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace constellation::testing {

struct JsonValue {
  enum Kind { kString, kNumber, kBool } kind = kString;
  std::string str;     // kString, \u escapes decoded to UTF-8
  int64_t number = 0;  // a fraction is truncated here; `real` keeps it
  double real = 0;
  bool boolean = false;
};

absl::StatusOr<std::map<std::string, JsonValue>> ParseFlatJson(absl::string_view line);

}  // namespace constellation::testing
