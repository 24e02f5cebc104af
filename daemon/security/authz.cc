#include "daemon/security/authz.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/security/identity_cache.h"
#include "daemon/security/pem.h"

namespace constellation::daemon::security {

absl::StatusOr<Identity> PeerIdentity(const grpc::AuthContext* context) {
  if (context == nullptr || !context->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("the caller presented no certificate of this cluster");
  }
  std::vector<grpc::string_ref> pems = context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.size() != 1) return absl::UnauthenticatedError("the caller's certificate is not available");
  static IdentityCache* const cache = new IdentityCache(IdentityOfPem);  // never destroyed: calls may outlive main()
  return cache->Get(absl::string_view(pems[0].data(), pems[0].size()));
}

absl::StatusOr<Identity> Authorize(absl::StatusOr<Identity> peer, std::initializer_list<Role> allowed,
                                   absl::string_view what) {
  if (!peer.ok()) return absl::UnauthenticatedError(absl::StrCat(what, ": ", peer.status().message()));
  for (Role role : allowed) {
    if (peer->role == role) return peer;
  }
  std::vector<std::string> names;
  for (Role role : allowed) names.emplace_back(RoleName(role));
  return absl::PermissionDeniedError(
      absl::StrCat(what, " is for ", absl::StrJoin(names, " or "), " identities; the caller is ", peer->ToString()));
}

absl::StatusOr<Identity> Authorizer::Check(const grpc::ServerContextBase& context, std::initializer_list<Role> allowed,
                                           absl::string_view what) const {
  if (insecure_) return Identity{Role::kAdmin, "insecure"};
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  return Authorize(PeerIdentity(auth.get()), allowed, what);
}

grpc::Status Authorizer::Require(const grpc::ServerContextBase& context, std::initializer_list<Role> allowed,
                                 absl::string_view what) const {
  absl::StatusOr<Identity> identity = Check(context, allowed, what);
  if (identity.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(identity.status().code()),
                      std::string(identity.status().message()));
}

bool MayManage(const Identity& identity, const Identity& owner) {
  return identity.role == Role::kAdmin || identity == owner;
}

}  // namespace constellation::daemon::security
