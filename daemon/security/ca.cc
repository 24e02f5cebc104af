#include "daemon/security/ca.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/security/files.h"
#include "daemon/security/pem.h"
#include "lib/process/private_dir.h"

namespace constellation::daemon::security {
namespace {

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

constexpr size_t kMaxPemBytes = 64 << 10;

absl::StatusOr<KeyPtr> NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (key == nullptr) return OpensslError("cannot make a key");
  return key;
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) return OpensslError(absl::StrCat("cannot add the extension ", value));
  int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!added) return OpensslError(absl::StrCat("cannot add the extension ", value));
  return absl::OkStatus();
}

// A certificate for `key` with subject O=constellation, OU=`unit`, CN=`common_name`,
// valid from an hour ago (clock skew) for `days`, not yet signed or extended.
absl::StatusOr<X509Ptr> NewCertificate(EVP_PKEY* key, const std::string& unit, const std::string& common_name,
                                       int days) {
  X509Ptr cert(X509_new(), X509_free);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), BN_free);
  bool ok = cert != nullptr && serial != nullptr && X509_set_version(cert.get(), 2) &&
            BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
            BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert.get()), int64_t{days} * 86400) != nullptr &&
            X509_set_pubkey(cert.get(), key);
  X509_NAME* name = ok ? X509_get_subject_name(cert.get()) : nullptr;
  auto add = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC, reinterpret_cast<const unsigned char*>(value.c_str()),
                                      -1, -1, 0) == 1;
  };
  ok = ok && add("O", "constellation") && add("OU", unit) && add("CN", common_name);
  if (!ok) return OpensslError("cannot make a certificate");
  return cert;
}

struct Ca {
  X509Ptr cert{nullptr, X509_free};
  KeyPtr key{nullptr, EVP_PKEY_free};
  std::string pem;
};

absl::StatusOr<Ca> LoadCa(const std::string& dir) {
  std::string cert_path = dir + "/ca.pem", key_path = dir + "/ca.key";
  if (!Exists(cert_path) || !Exists(key_path)) {
    return absl::NotFoundError(absl::StrCat("no CA in ", dir, ": ca.pem or ca.key is missing (make one with `",
                                            "constellation ca init ", dir, "`)"));
  }
  Ca ca;
  absl::StatusOr<std::string> pem = ReadFileBounded(cert_path, kMaxPemBytes);
  absl::StatusOr<std::string> key_pem = pem.ok() ? ReadFileBounded(key_path, kMaxPemBytes) : pem;
  if (!key_pem.ok()) return key_pem.status();
  ca.pem = *pem;
  absl::StatusOr<X509*> cert = ParseCertificate(*pem, cert_path);
  if (!cert.ok()) return cert.status();
  ca.cert.reset(*cert);
  absl::StatusOr<EVP_PKEY*> key = ParsePrivateKey(*key_pem, key_path);
  if (!key.ok()) return key.status();
  ca.key.reset(*key);
  if (X509_check_ca(ca.cert.get()) == 0) {
    return absl::FailedPreconditionError(absl::StrCat(cert_path, " is not a CA certificate"));
  }
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat(key_path, " does not belong to ", cert_path, ": this is not one CA (a foreign or mixed-up key)"));
  }
  return ca;
}

std::vector<std::string> DefaultHosts() {
  std::vector<std::string> hosts;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0 && ValidateHost(name).ok()) hosts.push_back(name);
  for (const char* host : {"localhost", "127.0.0.1", "::1"}) {
    if (hosts.empty() || hosts[0] != host) hosts.push_back(host);
  }
  return hosts;
}

// "URI:spiffe://...,DNS:host,IP:1.2.3.4": hosts are validated, so no comma or
// other configuration syntax can reach OpenSSL's parser.
std::string SubjectAltNames(const Identity& identity, const std::vector<std::string>& hosts) {
  std::vector<std::string> names{absl::StrCat("URI:", SpiffeUri(identity))};
  for (const std::string& host : hosts) {
    in6_addr v6;
    in_addr v4;
    bool ip = inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
    names.push_back(absl::StrCat(ip ? "IP:" : "DNS:", host));
  }
  return absl::StrJoin(names, ",");
}

}  // namespace

absl::Status ValidateHost(const std::string& host) {
  in6_addr v6;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return absl::OkStatus();
  }
  bool ok = !host.empty() && host.size() <= 253;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    ok = ok && !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-';
    for (char c : label) ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("\"", host, "\" is neither a DNS name nor an IP address"));
}

absl::Status InitCa(const std::string& dir, const CaOptions& options) {
  if (!options.force && (Exists(dir + "/ca.pem") || Exists(dir + "/ca.key"))) {
    return absl::AlreadyExistsError(
        absl::StrCat(dir, " already holds a CA; --force replaces it, and every certificate it issued stops working"));
  }
  absl::Status private_dir = internal::EnsurePrivateDir(dir);
  if (!private_dir.ok()) return private_dir;
  absl::StatusOr<KeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> cert = NewCertificate(key->get(), "ca", "Constellation cluster CA", options.days);
  if (!cert.ok()) return cert.status();
  X509_set_issuer_name(cert->get(), X509_get_subject_name(cert->get()));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert->get(), cert->get(), nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
        std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"}, std::pair{NID_subject_key_identifier, "hash"}}) {
    absl::Status added = AddExtension(cert->get(), &ctx, nid, value);
    if (!added.ok()) return added;
  }
  if (X509_sign(cert->get(), key->get(), EVP_sha256()) == 0) return OpensslError("cannot sign the CA certificate");
  absl::StatusOr<std::string> key_pem = PrivateKeyPem(key->get());
  absl::StatusOr<std::string> cert_pem = CertificatePem(cert->get());
  if (!key_pem.ok()) return key_pem.status();
  if (!cert_pem.ok()) return cert_pem.status();
  absl::Status written = WriteFileAtomic(dir + "/ca.key", *key_pem, 0600);
  if (written.ok()) written = WriteFileAtomic(dir + "/ca.pem", *cert_pem, 0644);
  return written;
}

absl::Status IssueBundle(const std::string& ca_dir, const std::string& name, const IssueOptions& options) {
  absl::Status valid = ValidateName(name);
  for (const std::string& host : options.hosts) {
    if (valid.ok()) valid = ValidateHost(host);
  }
  if (!valid.ok()) return valid;
  absl::StatusOr<Ca> ca = LoadCa(ca_dir);
  if (!ca.ok()) return ca.status();
  std::string dir = absl::StrCat(ca_dir, "/", name);
  if (!options.force && Exists(dir + "/cert.pem")) {
    return absl::AlreadyExistsError(
        absl::StrCat(dir, " already holds a bundle; --force replaces it (certificate rotation)"));
  }
  absl::Status private_dir = internal::EnsurePrivateDir(dir);
  if (!private_dir.ok()) return private_dir;

  Identity identity{options.role, name};
  std::vector<std::string> hosts = options.hosts;
  bool serves = options.role == Role::kMaster || options.role == Role::kNode;
  if (hosts.empty() && serves) hosts = DefaultHosts();
  absl::StatusOr<KeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> cert = NewCertificate(key->get(), std::string(RoleName(options.role)), name, options.days);
  if (!cert.ok()) return cert.status();
  X509_set_issuer_name(cert->get(), X509_get_subject_name(ca->cert.get()));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca->cert.get(), cert->get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair<int, std::string>{NID_basic_constraints, "critical,CA:FALSE"},
                            {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                            {NID_ext_key_usage, "serverAuth,clientAuth"},
                            {NID_subject_key_identifier, "hash"},
                            {NID_authority_key_identifier, "keyid:always"},
                            {NID_subject_alt_name, SubjectAltNames(identity, hosts)}}) {
    absl::Status added = AddExtension(cert->get(), &ctx, nid, value);
    if (!added.ok()) return added;
  }
  if (X509_sign(cert->get(), ca->key.get(), EVP_sha256()) == 0) return OpensslError("cannot sign the certificate");
  absl::StatusOr<std::string> key_pem = PrivateKeyPem(key->get());
  absl::StatusOr<std::string> cert_pem = CertificatePem(cert->get());
  if (!key_pem.ok()) return key_pem.status();
  if (!cert_pem.ok()) return cert_pem.status();
  absl::Status written = WriteFileAtomic(dir + "/key.pem", *key_pem, 0600);
  if (written.ok()) written = WriteFileAtomic(dir + "/cert.pem", *cert_pem, 0644);
  if (written.ok()) written = WriteFileAtomic(dir + "/ca.pem", ca->pem, 0644);
  return written;
}

}  // namespace constellation::daemon::security
