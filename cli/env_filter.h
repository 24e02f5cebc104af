#pragma once

// Which of cdeploy's environment variables go to the cluster. Forwarding all
// of them would hand the cluster (and every process of the deployment) the
// user's tokens, keys and agent sockets; by default only an allow-list goes:
// PATH, LANG, LC_*, TZ, CONSTELLATION_*, and the variables named with
// --env=NAME. --env-all forwards everything (the old behaviour).
//
// Plain functions; thread-compatible.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace constellation::cli {

struct EnvPolicy {
  std::vector<std::string> names;  // --env=NAME, each
  bool all = false;                // --env-all
};

// Whether the variable called `name` is forwarded under `policy`.
bool IsForwarded(absl::string_view name, const EnvPolicy& policy);

// The "NAME=value" entries of `environ` (null-terminated) that are forwarded.
std::vector<std::string> ForwardedEnvironment(char** environ, const EnvPolicy& policy);

// An error unless `name` (from --env=NAME) is a variable name.
absl::Status ValidateEnvName(absl::string_view name);

}  // namespace constellation::cli
