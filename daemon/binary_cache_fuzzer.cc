// libFuzzer target for the upload path (daemon/binary_cache.h), through its
// public API in a fresh temporary cache directory per input: Begin with a
// fuzzed id, Append a fuzzed sequence of chunks, then Finish or abandon the
// upload. The input is
//   flags u8: bit 0 the id names the data's real SHA-256, bit 1 its real
//             size, bit 2 Finish is called (else the upload is dropped)
//   [sha256: length u8 and bytes, unless bit 0]  [size: u64, unless bit 1]
//   chunks: length u8 and bytes, to the end
// Whatever the input: a malformed id is refused; Append fails once past the
// declared size; Finish succeeds only for the bytes the id names, and then
// the binary is cached with exactly those bytes; otherwise nothing is left in
// the directory (no temporary file, no binary).
// Run with tools/fuzz.sh binary_cache_fuzzer SECONDS; see docs/fuzzing.md.

#include <dirent.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/binary_cache.h"
#include "tools/fuzz/seeds.h"

namespace constellation::daemon {
namespace {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ == size_; }
  uint8_t Byte() { return empty() ? 0 : data_[at_++]; }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - at_);
    std::string out(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return out;
  }
  uint64_t U64() {
    uint64_t value = 0;
    std::string bytes = Bytes(8);
    std::memcpy(&value, bytes.data(), bytes.size());
    return value;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  std::string out;
  for (unsigned char byte : digest) absl::StrAppendFormat(&out, "%02x", byte);
  return out;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  return names;
}

// Empties and removes `dir` (a flat cache directory).
void RemoveCache(const std::string& dir) {
  for (const std::string& name : Entries(dir)) unlink((dir + "/" + name).c_str());
  rmdir(dir.c_str());
}

// A private directory for this process's caches, removed at exit.
const std::string& BaseDir() {
  static const std::string* base = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    if (tmp == nullptr) tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/binary_cache_fuzzer-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) fuzz::Violated("cannot make a temporary directory");
    std::atexit([] { rmdir(BaseDir().c_str()); });
    return new std::string(pattern);
  }();
  return *base;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Upload(const uint8_t* bytes, size_t size) {
  Input input(bytes, size);
  uint8_t flags = input.Byte();
  std::string sha256 = (flags & 1) ? "" : input.Bytes(input.Byte());
  uint64_t declared = (flags & 2) ? 0 : input.U64();
  std::vector<std::string> chunks;
  std::string data;
  while (!input.empty()) {
    chunks.push_back(input.Bytes(input.Byte()));
    data += chunks.back();
  }
  pb::BinaryId id;
  id.set_sha256((flags & 1) ? Sha256Hex(data) : sha256);
  id.set_size((flags & 2) ? data.size() : declared);

  std::string dir = BaseDir() + "/cache";
  absl::StatusOr<std::unique_ptr<BinaryCache>> cache = BinaryCache::Create(dir);
  if (!cache.ok()) fuzz::Violated(absl::StrCat("cannot make a cache: ", cache.status().ToString()).c_str());
  bool stored = false;
  {
    absl::StatusOr<std::unique_ptr<BinaryCache::Upload>> upload = (*cache)->Begin(id);
    if (!ValidateBinaryId(id).ok() && upload.ok()) fuzz::Violated("an upload with a malformed id began");
    if (upload.ok()) {
      uint64_t appended = 0;
      bool failed = false;
      for (const std::string& chunk : chunks) {
        appended += chunk.size();
        absl::Status status = (*upload)->Append(chunk);
        if (appended > id.size() && status.ok()) fuzz::Violated("Append past the declared size succeeded");
        if (!status.ok()) {
          failed = true;
          break;
        }
      }
      if ((flags & 4) && !failed) {
        stored = (*upload)->Finish().ok();
        if (stored && (data.size() != id.size() || Sha256Hex(data) != id.sha256())) {
          fuzz::Violated("Finish accepted bytes that are not what the id names");
        }
      }
    }
  }  // the upload is gone: an unfinished one must have left nothing behind
  if (stored) {
    if (!(*cache)->Has(id)) fuzz::Violated("a finished upload is not cached");
    if (ReadAll((*cache)->PathOf(id)) != data) fuzz::Violated("the cached binary differs from the upload");
  } else {
    if ((*cache)->Has(id)) fuzz::Violated("a failed upload is cached");
    if (!Entries(dir).empty()) fuzz::Violated(absl::StrCat("a failed upload left ", Entries(dir)[0]).c_str());
  }
  cache->reset();
  RemoveCache(dir);
}

// flags, then chunks of `data` of at most `piece` bytes.
std::string Chunked(uint8_t flags, const std::string& header, const std::string& data, size_t piece) {
  std::string out(1, static_cast<char>(flags));
  out += header;
  for (size_t at = 0; at < data.size(); at += piece) {
    std::string chunk = data.substr(at, piece);
    out += static_cast<char>(chunk.size());
    out += chunk;
  }
  return out;
}

}  // namespace

}  // namespace constellation::daemon

namespace constellation::fuzz {

std::vector<Seed> Seeds() {
  using namespace constellation::daemon;
  std::string binary =
      "\x7f"
      "ELF" +
      std::string(300, 'x');
  std::string sha = Sha256Hex(binary);
  std::string size(8, '\0');
  uint64_t n = binary.size();
  std::memcpy(size.data(), &n, 8);
  return {
      {"valid", Chunked(1 | 2 | 4, "", binary, 100)},
      {"valid-given-id", Chunked(4, std::string(1, 64) + sha + size, binary, 255)},
      {"abandoned", Chunked(1 | 2, "", binary, 50)},
      {"truncated", Chunked(1 | 4, size, binary.substr(0, 200), 64)},
      {"corrupted", Chunked(2 | 4, std::string(1, 64) + sha, binary + "!", 128)},
      {"bad-id", Chunked(2 | 4, std::string(1, 66) + "../" + sha.substr(3) + "/x", binary, 200)},
  };
}

}  // namespace constellation::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constellation::daemon::Upload(data, size);
  return 0;
}
