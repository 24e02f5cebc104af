#pragma once

// Who may call what: every gRPC handler of the daemons asks the Authorizer
// first. The caller's identity comes from the client certificate the TLS
// layer has already verified against the cluster CA (servers require one);
// the handler states the roles it serves.
//
//   node:   Upload, Launch, WriteStdin, Kill, Attach, ...  only the master
//   master: Spawn                                          only nodes
//   bridge: Deploy                                         clients and admins
//
// An insecure server (--insecure) has no identities: every caller is treated
// as an admin, which is what --insecure means. Immutable; thread-safe.

#include <initializer_list>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/security/identity.h"
#include "grpcpp/grpcpp.h"

namespace constellation::daemon::security {

// The identity in a verified peer's certificate; UNAUTHENTICATED without one.
absl::StatusOr<Identity> PeerIdentity(const grpc::AuthContext* context);

// The decision alone, for tests: `peer` (or its error) against the roles.
absl::StatusOr<Identity> Authorize(absl::StatusOr<Identity> peer, std::initializer_list<Role> allowed,
                                   absl::string_view what);

class Authorizer {
 public:
  explicit Authorizer(bool insecure) : insecure_(insecure) {}

  // The caller if its role is one of `allowed`: else PERMISSION_DENIED naming
  // `what` (the call) and the caller, or UNAUTHENTICATED.
  absl::StatusOr<Identity> Check(const grpc::ServerContextBase& context, std::initializer_list<Role> allowed,
                                 absl::string_view what) const;
  // Check() as a grpc::Status, for handlers that only need the yes or no.
  grpc::Status Require(const grpc::ServerContextBase& context, std::initializer_list<Role> allowed,
                       absl::string_view what) const;

  bool insecure() const { return insecure_; }

 private:
  bool insecure_;
};

// An owner or an admin: may `identity` manage what `owner` started?
bool MayManage(const Identity& identity, const Identity& owner);

}  // namespace constellation::daemon::security
