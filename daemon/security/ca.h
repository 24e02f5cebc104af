#pragma once

// The cluster's certificate authority (`constellation ca init|issue`).
//
// A CA directory holds ca.pem (the CA certificate, public) and ca.key (its
// private key, mode 0600). Issuing makes a bundle directory CA_DIR/NAME/ with
// ca.pem (a copy of the CA certificate), cert.pem and key.pem (0600): what
// every daemon and cdeploy take as --tls=BUNDLE_DIR. The certificate carries
// its holder's role and name as a URI subject alternative name,
// spiffe://constellation/<role>/<name> (identity.h reads it back), and the
// hosts it may serve as DNS or IP subject alternative names, which clients
// check against the address they dial.
//
// Keys are ECDSA P-256; certificates are X.509 v3 signed with SHA-256.
// Everything here is plain file I/O and OpenSSL calls; thread-compatible.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "daemon/security/identity.h"

namespace constellation::daemon::security {

struct CaOptions {
  int days = 3650;     // how long the CA certificate is valid
  bool force = false;  // replace an existing CA (every bundle it issued stops working)
};

// Makes DIR/ca.pem and DIR/ca.key (DIR is created 0700 if missing). Refuses
// to replace an existing CA unless `force`.
absl::Status InitCa(const std::string& dir, const CaOptions& options);

struct IssueOptions {
  Role role = Role::kClient;
  // DNS names or IP addresses the holder serves at. Masters and nodes need the
  // addresses their peers dial; none given: this host's name, localhost,
  // 127.0.0.1 and ::1.
  std::vector<std::string> hosts;
  int days = 365;
  bool force = false;  // replace an existing bundle of that name (rotation)
};

// Issues a certificate for `name` signed by the CA in `ca_dir` and writes the
// bundle directory ca_dir/name/. Names are 1-64 of [A-Za-z0-9._-].
absl::Status IssueBundle(const std::string& ca_dir, const std::string& name, const IssueOptions& options);

// Checks a host for a certificate: a DNS name ([A-Za-z0-9.-], labels of at most
// 63) or an IPv4/IPv6 address.
absl::Status ValidateHost(const std::string& host);

}  // namespace constellation::daemon::security
