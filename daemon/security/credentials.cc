#include "daemon/security/credentials.h"

#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/security/files.h"
#include "daemon/security/pem.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace constellation::daemon::security {
namespace {

constexpr size_t kMaxPemBytes = 64 << 10;

// The certificate was issued by the CA (one level: our CA signs leaves only).
absl::Status CheckIssuedBy(X509* cert, X509* ca, const std::string& dir) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  bool ok = store != nullptr && ctx != nullptr && X509_STORE_add_cert(store, ca) == 1 &&
            X509_STORE_CTX_init(ctx, store, cert, nullptr) == 1;
  int verified = ok ? X509_verify_cert(ctx) : 0;
  std::string why = ok && verified != 1 ? X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)) : "";
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  if (verified == 1) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(dir, "/cert.pem is not a valid certificate of the CA in ", dir, "/ca.pem: ", why));
}

}  // namespace

Credentials Credentials::Insecure() { return Credentials(); }

absl::StatusOr<Credentials> Credentials::LoadBundle(const std::string& dir) {
  Credentials creds;
  creds.insecure_ = false;
  creds.dir_ = dir;
  for (auto [file, pem] : {std::pair{"ca.pem", &creds.ca_pem_}, std::pair{"cert.pem", &creds.cert_pem_},
                           std::pair{"key.pem", &creds.key_pem_}}) {
    absl::StatusOr<std::string> text = ReadFileBounded(absl::StrCat(dir, "/", file), kMaxPemBytes);
    if (!text.ok()) return text.status();
    *pem = *std::move(text);
  }
  struct stat st;
  if (stat((dir + "/key.pem").c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    fprintf(stderr, "warning: %s/key.pem is readable by other users (chmod 600 it)\n", dir.c_str());
  }
  absl::StatusOr<X509*> ca = ParseCertificate(creds.ca_pem_, dir + "/ca.pem");
  if (!ca.ok()) return ca.status();
  std::unique_ptr<X509, decltype(&X509_free)> ca_cert(*ca, X509_free);
  absl::StatusOr<X509*> cert = ParseCertificate(creds.cert_pem_, dir + "/cert.pem");
  if (!cert.ok()) return cert.status();
  std::unique_ptr<X509, decltype(&X509_free)> own(*cert, X509_free);
  absl::StatusOr<EVP_PKEY*> key = ParsePrivateKey(creds.key_pem_, dir + "/key.pem");
  if (!key.ok()) return key.status();
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> own_key(*key, EVP_PKEY_free);
  if (X509_check_private_key(own.get(), own_key.get()) != 1) {
    return OpensslError(absl::StrCat(dir, "/key.pem does not belong to ", dir, "/cert.pem"));
  }
  absl::Status issued = CheckIssuedBy(own.get(), ca_cert.get(), dir);
  if (!issued.ok()) return issued;
  absl::StatusOr<Identity> identity = IdentityOf(own.get());
  if (!identity.ok())
    return absl::FailedPreconditionError(absl::StrCat(dir, "/cert.pem: ", identity.status().message()));
  creds.identity_ = *identity;
  return creds;
}

std::shared_ptr<grpc::ServerCredentials> Credentials::ServerCredentials() const {
  if (insecure_) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_pem_;
  options.pem_key_cert_pairs.push_back({key_pem_, cert_pem_});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> Credentials::ChannelCredentials() const {
  if (insecure_) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem_;
  options.pem_private_key = key_pem_;
  options.pem_cert_chain = cert_pem_;
  return grpc::SslCredentials(options);
}

absl::StatusOr<Credentials> LoadForRole(const TlsFlags& flags, const std::string& default_dir,
                                        std::initializer_list<Role> roles, const std::string& program) {
  if (flags.insecure) return Credentials::Insecure();
  std::string dir = flags.bundle_dir.empty() ? default_dir : flags.bundle_dir;
  std::vector<std::string> role_names;
  for (Role role : roles) role_names.emplace_back(RoleName(role));
  std::string role_text = absl::StrJoin(role_names, "|");
  if (!Exists(dir + "/cert.pem")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no TLS bundle at ", dir, " (ca.pem, cert.pem, key.pem). Make one with\n", "  constellation ca init CA_DIR\n",
        "  constellation ca issue CA_DIR NAME --role=", role_names[0], " [--host=HOST]...\n",
        "and pass --tls=CA_DIR/NAME (docs/security.md). --insecure runs without TLS: anyone who can reach ", program,
        " can then ", program == "cdeploy" ? "impersonate the cluster" : "run code on this machine"));
  }
  absl::StatusOr<Credentials> creds = Credentials::LoadBundle(dir);
  if (!creds.ok()) return creds.status();
  for (Role role : roles) {
    if (creds->identity().role == role) return creds;
  }
  return absl::FailedPreconditionError(absl::StrCat(dir, "/cert.pem is a ", RoleName(creds->identity().role),
                                                    " certificate; ", program, " needs a ", role_text, " one"));
}

std::string InsecureWarning(const std::string& program) {
  return absl::StrCat(program,
                      ": WARNING: running without TLS (--insecure): nothing on the control plane is encrypted or "
                      "authenticated, and the cluster trusts whoever reaches it. Use it only on a private, trusted "
                      "network (docs/security.md).");
}

}  // namespace constellation::daemon::security
