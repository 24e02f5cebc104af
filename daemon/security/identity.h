#pragma once

// Who is on the other end of a control-plane connection: a role and a name,
// as the cluster CA wrote them into the peer's certificate
// (spiffe://constellation/<role>/<name>). Plain values, no I/O.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace constellation::daemon::security {

enum class Role {
  kMaster,  // places processes: drives the nodes
  kNode,    // runs processes: asks the master to spawn for them
  kClient,  // deploys programs and manages its own deployments
  kAdmin,   // a client that may also manage everyone's deployments
};

struct Identity {
  Role role = Role::kClient;
  std::string name;
  bool operator==(const Identity&) const = default;
  // "client alice"
  std::string ToString() const;
};

absl::string_view RoleName(Role role);
absl::StatusOr<Role> ParseRole(absl::string_view name);

// Names are 1-64 characters of [A-Za-z0-9._-]: safe in a URI, a file name
// and a log line.
absl::Status ValidateName(absl::string_view name);

// "spiffe://constellation/node/n1" <-> Identity{kNode, "n1"}.
std::string SpiffeUri(const Identity& identity);
absl::StatusOr<Identity> ParseSpiffeUri(absl::string_view uri);

}  // namespace constellation::daemon::security
