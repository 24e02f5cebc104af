#include "daemon/security/pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace constellation::daemon::security {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr ReadBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, length > 0 ? length : 0);
}

}  // namespace

absl::Status OpensslError(const std::string& what) {
  std::string message = what;
  unsigned long error;
  while ((error = ERR_get_error()) != 0) {
    char text[256];
    ERR_error_string_n(error, text, sizeof(text));
    absl::StrAppend(&message, ": ", text);
  }
  return absl::InternalError(message);
}

absl::StatusOr<X509*> ParseCertificate(const std::string& pem, const std::string& source) {
  BioPtr bio = ReadBio(pem);
  X509* cert = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (cert == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(source, " holds no PEM certificate"));
  }
  return cert;
}

absl::StatusOr<EVP_PKEY*> ParsePrivateKey(const std::string& pem, const std::string& source) {
  BioPtr bio = ReadBio(pem);
  // No passphrase callback: an encrypted key is an error, never a prompt.
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(
                            bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr)
                      : nullptr;
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(source, " holds no unencrypted PEM private key"));
  }
  return key;
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) return OpensslError("cannot write a certificate");
  return BioText(bio.get());
}

absl::StatusOr<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpensslError("cannot write a key");
  }
  return BioText(bio.get());
}

absl::StatusOr<Identity> IdentityOf(X509* cert) {
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  std::vector<std::string> uris;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)), ASN1_STRING_length(uri));
  }
  GENERAL_NAMES_free(names);
  if (uris.size() != 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("the certificate has ", uris.size(), " URI names; a Constellation certificate has exactly one"));
  }
  absl::StatusOr<Identity> identity = ParseSpiffeUri(uris[0]);
  if (!identity.ok()) return absl::UnauthenticatedError(identity.status().message());
  return identity;
}

absl::StatusOr<Identity> IdentityOfPem(const std::string& pem) {
  absl::StatusOr<X509*> cert = ParseCertificate(pem, "the peer's certificate");
  if (!cert.ok()) return absl::UnauthenticatedError(cert.status().message());
  absl::StatusOr<Identity> identity = IdentityOf(*cert);
  X509_free(*cert);
  return identity;
}

}  // namespace constellation::daemon::security
