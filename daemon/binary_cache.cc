#include "daemon/binary_cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace constellation::daemon {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

std::string Hex(const unsigned char* digest, unsigned int length) {
  std::string out;
  for (unsigned int i = 0; i < length; ++i) absl::StrAppendFormat(&out, "%02x", digest[i]);
  return out;
}

class UploadImpl : public BinaryCache::Upload {
 public:
  UploadImpl(pb::BinaryId id, std::string final_path, std::string temp_path, int fd)
      : id_(std::move(id)), final_path_(std::move(final_path)), temp_path_(std::move(temp_path)), fd_(fd) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~UploadImpl() override {
    EVP_MD_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
    if (!finished_) unlink(temp_path_.c_str());
  }

  absl::Status Append(absl::string_view data) override {
    written_ += data.size();
    if (written_ > id_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("upload is longer than the ", id_.size(), " bytes announced"));
    }
    EVP_DigestUpdate(ctx_, data.data(), data.size());
    while (!data.empty()) {
      ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno("writing the upload");
      data.remove_prefix(n);
    }
    return absl::OkStatus();
  }

  absl::Status Finish() override {
    if (written_ != id_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("upload truncated: ", written_, " of ", id_.size(), " bytes; rejected"));
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_, digest, &length);
    std::string actual = Hex(digest, length);
    if (actual != id_.sha256()) {
      return absl::DataLossError(
          absl::StrCat("upload corrupted: its bytes hash to ", actual, ", not ", id_.sha256(), "; rejected"));
    }
    if (fchmod(fd_, 0755) != 0 || fsync(fd_) != 0) return Errno("storing the upload");
    close(fd_);
    fd_ = -1;
    if (rename(temp_path_.c_str(), final_path_.c_str()) != 0) return Errno("storing the upload");
    finished_ = true;
    return absl::OkStatus();
  }

 private:
  pb::BinaryId id_;
  std::string final_path_, temp_path_;
  int fd_;
  EVP_MD_CTX* ctx_;
  uint64_t written_ = 0;
  bool finished_ = false;
};

}  // namespace

absl::Status ValidateBinaryId(const pb::BinaryId& id) {
  if (id.sha256().size() != 64 || id.sha256().find_first_not_of("0123456789abcdef") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", id.sha256(), "\" is not a SHA-256 in lower-case hex"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Sha256OfFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("open ", path));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) EVP_DigestUpdate(ctx, buf, n);
  close(fd);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  if (n < 0) return Errno(absl::StrCat("read ", path));
  return Hex(digest, length);
}

absl::StatusOr<std::unique_ptr<BinaryCache>> BinaryCache::Create(std::string dir) {
  std::string partial;
  for (size_t i = 1; i <= dir.size(); ++i) {  // mkdir -p
    if (i == dir.size() || dir[i] == '/') {
      partial = dir.substr(0, i);
      if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) return Errno(absl::StrCat("mkdir ", partial));
    }
  }
  return std::unique_ptr<BinaryCache>(new BinaryCache(std::move(dir)));
}

bool BinaryCache::Has(const pb::BinaryId& id) const {
  if (!ValidateBinaryId(id).ok()) return false;
  struct stat st;
  return stat(PathOf(id).c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == id.size();
}

std::string BinaryCache::PathOf(const pb::BinaryId& id) const { return absl::StrCat(dir_, "/", id.sha256()); }

absl::StatusOr<std::unique_ptr<BinaryCache::Upload>> BinaryCache::Begin(const pb::BinaryId& id) {
  absl::Status valid = ValidateBinaryId(id);
  if (!valid.ok()) return valid;
  std::string temp = absl::StrCat(dir_, "/.upload-", id.sha256(), "-XXXXXX");
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("create ", temp));
  return std::unique_ptr<Upload>(new UploadImpl(id, PathOf(id), temp, fd));
}

absl::Status BinaryCache::AddFile(const pb::BinaryId& id, const std::string& path) {
  absl::StatusOr<std::unique_ptr<Upload>> upload = Begin(id);
  if (!upload.ok()) return upload.status();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("open ", path));
  char buf[1 << 16];
  ssize_t n;
  absl::Status status;
  while (status.ok() && (n = read(fd, buf, sizeof(buf))) > 0) status = (*upload)->Append({buf, size_t(n)});
  close(fd);
  if (!status.ok()) return status;
  return (*upload)->Finish();
}

}  // namespace constellation::daemon
