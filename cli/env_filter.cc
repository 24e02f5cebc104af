#include "cli/env_filter.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace constellation::cli {

bool IsForwarded(absl::string_view name, const EnvPolicy& policy) {
  if (policy.all) return true;
  if (name == "PATH" || name == "LANG" || name == "TZ") return true;
  if (absl::StartsWith(name, "LC_") || absl::StartsWith(name, "CONSTELLATION_")) return true;
  return std::find(policy.names.begin(), policy.names.end(), name) != policy.names.end();
}

std::vector<std::string> ForwardedEnvironment(char** environ, const EnvPolicy& policy) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry = *e;
    size_t equals = entry.find('=');
    if (equals == absl::string_view::npos) continue;
    if (IsForwarded(entry.substr(0, equals), policy)) out.emplace_back(entry);
  }
  return out;
}

absl::Status ValidateEnvName(absl::string_view name) {
  bool ok = !name.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--env=", name, ": not a variable name (letters, digits and _, not starting with a digit)"));
}

}  // namespace constellation::cli
