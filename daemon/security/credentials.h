#pragma once

// The TLS credentials of one daemon or client, loaded from a bundle directory
// (ca.pem, cert.pem, key.pem as `constellation ca issue` writes them), or the
// explicit absence of any (--insecure).
//
// Servers require and verify a client certificate issued by the bundle's CA;
// clients verify the server's certificate against the CA and the host they
// dial. Loading checks the bundle whole (the key matches the certificate, the
// CA issued it, it carries an identity) so a broken bundle is a clear error
// at start rather than a failed handshake later. Immutable once loaded;
// thread-safe.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/security/identity.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace constellation::daemon::security {

inline constexpr char kDaemonDefaultBundle[] = "/etc/constellation/tls";

struct TlsFlags {
  std::string bundle_dir;  // --tls=DIR ("" = the default for the program)
  bool insecure = false;   // --insecure
};

class Credentials {
 public:
  static absl::StatusOr<Credentials> LoadBundle(const std::string& dir);
  static Credentials Insecure();

  bool insecure() const { return insecure_; }
  // The holder's identity (from cert.pem); an insecure holder has none.
  const Identity& identity() const { return identity_; }
  const std::string& bundle_dir() const { return dir_; }

  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const;

 private:
  bool insecure_ = true;
  std::string dir_;
  Identity identity_;
  std::string ca_pem_, cert_pem_, key_pem_;
};

// Loads what the flags say for a daemon or client whose certificate must have
// one of `roles`: the insecure credentials for --insecure, else the bundle at
// --tls or `default_dir`. The error says how to make a bundle.
absl::StatusOr<Credentials> LoadForRole(const TlsFlags& flags, const std::string& default_dir,
                                        std::initializer_list<Role> roles, const std::string& program);

// The line every program prints on stderr when it runs without TLS.
std::string InsecureWarning(const std::string& program);

}  // namespace constellation::daemon::security
