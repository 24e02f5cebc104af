#pragma once

// IdentityCache: the identity in a peer's certificate, kept by the
// certificate's bytes. Parsing a certificate (PEM, then X.509, with OpenSSL)
// took 0.19 ms of every control-plane call: a spawn on the cluster passes two
// (Master.Spawn, then Node.Launch) and more on a busy master. A peer presents
// the same certificate on every call of its connection, and the identity is
// a function of those bytes alone: the TLS handshake has checked the chain
// and the dates before any call, and nothing in it depends on the time of
// the call. So a known certificate is looked up, not parsed again.
//
// Bounded: a cluster has few identities (its master, nodes and clients);
// past `max_entries` distinct certificates the cache starts over, so a
// stream of new ones costs parses, never memory.
//
// Threading: thread-safe.

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/security/identity.h"

namespace constellation::daemon::security {

class IdentityCache {
 public:
  using Parse = std::function<absl::StatusOr<Identity>(const std::string& pem)>;
  static constexpr size_t kDefaultMaxEntries = 1024;

  // `parse`: how a certificate's identity is read (IdentityOfPem; a test's counter).
  explicit IdentityCache(Parse parse, size_t max_entries = kDefaultMaxEntries)
      : parse_(std::move(parse)), max_entries_(max_entries) {}

  // The identity (or why there is none) of the certificate `pem`.
  absl::StatusOr<Identity> Get(absl::string_view pem);

  size_t size() const;

 private:
  const Parse parse_;
  const size_t max_entries_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, absl::StatusOr<Identity>> known_ ABSL_GUARDED_BY(mu_);
};

}  // namespace constellation::daemon::security
