#pragma once

// OpenSSL glue shared by the CA and the credential loader: PEM in and out,
// OpenSSL's error queue as a Status, and the identity a certificate carries.
// Raw pointers returned here are owned by the caller (X509_free,
// EVP_PKEY_free). Thread-safe (OpenSSL 3 is).

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>

#include "absl/status/statusor.h"
#include "daemon/security/identity.h"

namespace constellation::daemon::security {

// `what` plus OpenSSL's queued errors (which this clears).
absl::Status OpensslError(const std::string& what);

// `source` names the file in messages.
absl::StatusOr<X509*> ParseCertificate(const std::string& pem, const std::string& source);
absl::StatusOr<EVP_PKEY*> ParsePrivateKey(const std::string& pem, const std::string& source);
absl::StatusOr<std::string> CertificatePem(X509* cert);
absl::StatusOr<std::string> PrivateKeyPem(EVP_PKEY* key);

// The spiffe://constellation/<role>/<name> URI subject alternative name; an
// error when there is none, or more than one.
absl::StatusOr<Identity> IdentityOf(X509* cert);
absl::StatusOr<Identity> IdentityOfPem(const std::string& pem);

}  // namespace constellation::daemon::security
