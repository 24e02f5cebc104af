#include "daemon/security/identity.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace constellation::daemon::security {
namespace {

constexpr absl::string_view kSpiffePrefix = "spiffe://constellation/";

}  // namespace

std::string Identity::ToString() const { return absl::StrCat(RoleName(role), " ", name); }

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kMaster:
      return "master";
    case Role::kNode:
      return "node";
    case Role::kClient:
      return "client";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role role : {Role::kMaster, Role::kNode, Role::kClient, Role::kAdmin}) {
    if (name == RoleName(role)) return role;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role \"", name, "\" (expected master, node, client or admin)"));
}

absl::Status ValidateName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && name != "." && name != "..";
  for (char c : name) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("bad name \"", absl::CHexEscape(name.substr(0, 80)), "\": use 1-64 of A-Z a-z 0-9 . _ -"));
}

std::string SpiffeUri(const Identity& identity) {
  return absl::StrCat(kSpiffePrefix, RoleName(identity.role), "/", identity.name);
}

absl::StatusOr<Identity> ParseSpiffeUri(absl::string_view uri) {
  if (!absl::ConsumePrefix(&uri, kSpiffePrefix)) {
    return absl::InvalidArgumentError("not a Constellation identity (spiffe://constellation/<role>/<name>)");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(uri, '/');
  if (parts.size() != 2) return absl::InvalidArgumentError("an identity is spiffe://constellation/<role>/<name>");
  absl::StatusOr<Role> role = ParseRole(parts[0]);
  if (!role.ok()) return role.status();
  absl::Status name = ValidateName(parts[1]);
  if (!name.ok()) return name;
  return Identity{*role, std::string(parts[1])};
}

}  // namespace constellation::daemon::security
