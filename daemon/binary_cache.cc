#include "daemon/binary_cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/process/private_dir.h"

namespace constellation::daemon {

using internal::EnsurePrivateDir;

namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

std::string Hex(const unsigned char* digest, unsigned int length) {
  std::string out;
  for (unsigned int i = 0; i < length; ++i) absl::StrAppendFormat(&out, "%02x", digest[i]);
  return out;
}

}  // namespace

BinaryCache::Stamp BinaryCache::StampOf(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size, int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
          int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec};
}

absl::StatusOr<std::string> Sha256OfFd(int fd, const std::string& path) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) EVP_DigestUpdate(ctx, buf, n);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  if (n < 0) return Errno(absl::StrCat("read ", path));
  return Hex(digest, length);
}

namespace {

class UploadImpl : public BinaryCache::Upload {
 public:
  using OnStored = std::function<void(const BinaryCache::Stamp&)>;
  UploadImpl(pb::BinaryId id, std::string final_path, std::string temp_path, int fd, OnStored on_stored)
      : id_(std::move(id)),
        final_path_(std::move(final_path)),
        temp_path_(std::move(temp_path)),
        fd_(fd),
        on_stored_(std::move(on_stored)) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~UploadImpl() override {
    EVP_MD_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
    if (!finished_) unlink(temp_path_.c_str());
  }

  absl::Status Append(absl::string_view data) override {
    if (data.size() > id_.size() - written_) {  // checked before a byte of it is written
      return absl::InvalidArgumentError(absl::StrCat("upload is longer than the ", id_.size(), " bytes announced"));
    }
    written_ += data.size();
    EVP_DigestUpdate(ctx_, data.data(), data.size());
    while (!data.empty()) {
      ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno("writing the upload");
      data.remove_prefix(n);
    }
    // Starts writing back each few MiB as they come, without waiting, so the
    // fsync in Finish() has only the tail left to wait for.
    if (written_ - flushed_ >= kWriteBackEvery) {
      sync_file_range(fd_, flushed_, written_ - flushed_, SYNC_FILE_RANGE_WRITE);
      flushed_ = written_;
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
    // Read-only: nothing, not even a bug of ours, writes a cached binary again.
    if (fchmod(fd_, 0500) != 0 || fsync(fd_) != 0) return Errno("storing the upload");
    if (rename(temp_path_.c_str(), final_path_.c_str()) != 0) return Errno("storing the upload");
    finished_ = true;
    struct stat st;
    if (fstat(fd_, &st) == 0) on_stored_(BinaryCache::StampOf(st));  // hashed as it came: no need to again
    close(fd_);
    fd_ = -1;
    return absl::OkStatus();
  }

  int OpenForReading() const override { return fd_ < 0 ? -1 : fcntl(fd_, F_DUPFD_CLOEXEC, 0); }

 private:
  pb::BinaryId id_;
  std::string final_path_, temp_path_;
  int fd_;
  OnStored on_stored_;
  EVP_MD_CTX* ctx_;
  static constexpr uint64_t kWriteBackEvery = 4 << 20;
  uint64_t written_ = 0;
  uint64_t flushed_ = 0;  // write-back started for the bytes below
  bool finished_ = false;
};

}  // namespace

absl::Status ValidateBinaryId(const pb::BinaryId& id) {
  if (id.sha256().size() != 64 || id.sha256().find_first_not_of("0123456789abcdef") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", id.sha256(), "\" is not a SHA-256 in lower-case hex"));
  }
  return absl::OkStatus();
}

std::string Sha256OfBytes(absl::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return Hex(digest, length);
}

absl::StatusOr<std::string> Sha256OfFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("open ", path));
  absl::StatusOr<std::string> sha = Sha256OfFd(fd, path);
  close(fd);
  return sha;
}

std::string BootId() {
  char buf[64] = {};
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  std::string id(buf, n > 0 ? n : 0);
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

absl::StatusOr<std::unique_ptr<BinaryCache>> BinaryCache::Create(std::string dir, uint64_t max_binary_size) {
  absl::Status status = EnsurePrivateDir(dir);
  if (!status.ok()) return status;
  return std::unique_ptr<BinaryCache>(new BinaryCache(std::move(dir), max_binary_size));
}

bool BinaryCache::Has(const pb::BinaryId& id) const { return VerifiedPath(id).ok(); }

absl::StatusOr<std::string> BinaryCache::VerifiedPath(const pb::BinaryId& id) const {
  absl::Status valid = ValidateBinaryId(id);
  if (!valid.ok()) return valid;
  std::string path = PathOf(id);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT) return absl::NotFoundError(absl::StrCat("binary ", id.sha256(), " is not cached"));
  if (fd < 0 && errno != ELOOP) return Errno(absl::StrCat("open ", path));
  struct stat st;
  std::string wrong;
  if (fd < 0) {
    wrong = "it is a symlink";
  } else if (fstat(fd, &st) != 0) {
    absl::Status status = Errno(absl::StrCat("stat ", path));
    close(fd);
    return status;
  } else if (!S_ISREG(st.st_mode)) {
    wrong = "it is not a regular file";
  } else if (st.st_uid != geteuid()) {
    wrong = absl::StrCat("it is owned by uid ", st.st_uid);
  } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    wrong = "others may write to it";
  } else if (static_cast<uint64_t>(st.st_size) != id.size()) {
    wrong = absl::StrCat("it has ", st.st_size, " bytes, not ", id.size());
  } else {
    Stamp stamp = StampOf(st);
    bool known;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = verified_.find(id.sha256());
      known = it != verified_.end() && it->second == stamp;
    }
    if (known) {
      close(fd);
      return path;
    }
    absl::StatusOr<std::string> actual = Sha256OfFd(fd, path);
    if (!actual.ok()) {
      close(fd);
      return actual.status();
    }
    if (*actual == id.sha256()) {
      close(fd);
      Remember(id.sha256(), stamp);
      return path;
    }
    wrong = absl::StrCat("its bytes hash to ", *actual);
  }
  if (fd >= 0) close(fd);
  {
    std::lock_guard<std::mutex> lock(mu_);
    verified_.erase(id.sha256());
  }
  unlink(path.c_str());  // so that it can be uploaded again
  return absl::DataLossError(absl::StrCat("cached binary ", path, " is not what its name says (", wrong,
                                          "); deleted it, it will be uploaded again"));
}

void BinaryCache::LinkedElsewhere(const pb::BinaryId& id) const {
  struct stat st;
  if (!ValidateBinaryId(id).ok() || lstat(PathOf(id).c_str(), &st) != 0) return;
  Stamp now = StampOf(st);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = verified_.find(id.sha256());
  if (it == verified_.end()) return;
  Stamp& was = it->second;
  if (was.dev == now.dev && was.ino == now.ino && was.size == now.size && was.mtime_ns == now.mtime_ns) {
    was.ctime_ns = now.ctime_ns;
  }
}

void BinaryCache::Remember(const std::string& sha256, const Stamp& stamp) const {
  std::lock_guard<std::mutex> lock(mu_);
  verified_[sha256] = stamp;
}

std::string BinaryCache::PathOf(const pb::BinaryId& id) const { return absl::StrCat(dir_, "/", id.sha256()); }

absl::StatusOr<std::unique_ptr<BinaryCache::Upload>> BinaryCache::Begin(const pb::BinaryId& id) {
  absl::Status valid = ValidateBinaryId(id);
  if (!valid.ok()) return valid;
  if (id.size() > max_binary_size_) {
    return absl::ResourceExhaustedError(absl::StrCat("binary of ", id.size(), " bytes is over this daemon's limit of ",
                                                     max_binary_size_, " bytes (--max-binary-size); refused"));
  }
  std::string temp = absl::StrCat(dir_, "/.upload-", id.sha256(), "-XXXXXX");
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("create ", temp));
  std::string sha256 = id.sha256();
  return std::unique_ptr<Upload>(
      new UploadImpl(id, PathOf(id), temp, fd, [this, sha256](const Stamp& stamp) { Remember(sha256, stamp); }));
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

absl::Status BinaryCache::Adopt(const pb::BinaryId& id, const std::string& path) {
  absl::Status valid = ValidateBinaryId(id);
  if (!valid.ok()) return valid;
  if (id.size() > max_binary_size_) {
    return absl::ResourceExhaustedError(absl::StrCat("binary of ", id.size(), " bytes is over this daemon's limit of ",
                                                     max_binary_size_, " bytes (--max-binary-size); refused"));
  }
  if (path.empty() || path[0] != '/' || path.size() > 4096 || path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("a binary to adopt is named by an absolute path");
  }
  auto refuse = [&](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat("will not adopt ", path, ": ", why));
  };
  // O_NONBLOCK: a FIFO planted there must not block this thread.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return refuse(errno == ELOOP ? "it is a symlink" : std::strerror(errno));
  struct stat before, linked;
  std::string why;
  if (fstat(fd, &before) != 0) {
    why = std::strerror(errno);
  } else if (!S_ISREG(before.st_mode)) {
    why = "it is not a regular file";
  } else if (before.st_uid != geteuid()) {
    why = absl::StrCat("it is owned by uid ", before.st_uid);
  } else if ((before.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) != 0) {
    why = "it is writable";
  } else if (static_cast<uint64_t>(before.st_size) != id.size()) {
    why = absl::StrCat("it has ", before.st_size, " bytes, not ", id.size());
  } else if (absl::StatusOr<std::string> actual = Sha256OfFd(fd, path); !actual.ok()) {
    why = std::string(actual.status().message());
  } else if (*actual != id.sha256()) {
    why = absl::StrCat("its bytes hash to ", *actual);
  }
  if (!why.empty()) {
    close(fd);
    return refuse(why);
  }
  // Linked by name, then checked to be the inode that was hashed: the name
  // may have been pointed elsewhere meanwhile.
  static std::atomic<uint64_t> next{0};
  std::string temp = absl::StrCat(dir_, "/.adopt-", id.sha256(), "-", getpid(), "-", next++);
  if (link(path.c_str(), temp.c_str()) != 0) {
    why = errno == EXDEV ? "it is on another filesystem" : std::strerror(errno);
  } else if (lstat(temp.c_str(), &linked) != 0 || linked.st_dev != before.st_dev || linked.st_ino != before.st_ino) {
    why = "it was replaced while it was checked";
  } else if (fstat(fd, &linked) != 0 || StampOf(linked).mtime_ns != StampOf(before).mtime_ns ||
             linked.st_size != before.st_size) {
    why = "it changed while it was hashed";
  } else if (rename(temp.c_str(), PathOf(id).c_str()) != 0) {
    why = std::strerror(errno);
  }
  close(fd);
  // Also after a rename: when both names were links to one file already,
  // rename does nothing and leaves the temporary name.
  unlink(temp.c_str());
  if (!why.empty()) return refuse(why);
  Remember(id.sha256(), StampOf(linked));  // hashed above; the link changed its ctime
  return absl::OkStatus();
}

}  // namespace constellation::daemon
