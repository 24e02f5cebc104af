#include "lib/core/codec.h"

#include "absl/strings/str_cat.h"

namespace constellation {

void Encoder::WriteVarint(uint64_t value) {
  char buf[10];
  size_t n = 0;
  while (value >= 0x80) {
    buf[n++] = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  buf[n++] = static_cast<char>(value);
  out_->append(buf, n);
}

bool Decoder::Fail(absl::string_view why) {
  if (status_.ok()) {
    status_ = absl::InvalidArgumentError(absl::StrCat(why, " at byte ", pos_, " of ", in_.size()));
  }
  return false;
}

bool Decoder::ReadBytes(void* data, size_t size) {
  if (!ok()) return false;
  if (size > remaining()) return Fail(absl::StrCat("truncated: need ", size, " bytes, have ", remaining()));
  if (size != 0) std::memcpy(data, in_.data() + pos_, size);
  pos_ += size;
  return true;
}

bool Decoder::ReadView(size_t size, absl::string_view* view) {
  if (!ok()) return false;
  if (size > remaining()) return Fail(absl::StrCat("truncated: need ", size, " bytes, have ", remaining()));
  *view = in_.substr(pos_, size);
  pos_ += size;
  return true;
}

bool Decoder::ReadVarint(uint64_t* value) {
  if (!ok()) return false;
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= in_.size()) return Fail("truncated varint");
    uint8_t byte = static_cast<uint8_t>(in_[pos_++]);
    if (shift == 63 && byte > 1) return Fail("varint overflows 64 bits");
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return true;
    }
  }
  return Fail("varint longer than 10 bytes");
}

bool Decoder::ReadCount(size_t min_size, uint64_t* count) {
  if (!ReadVarint(count)) return false;
  uint64_t limit = min_size == 0 ? remaining() + empty_elements_left_ : remaining() / min_size;
  if (*count > limit) {
    if (min_size == 0) {
      return Fail(absl::StrCat("count ", *count, " is more than the ", remaining(), " bytes left can hold, with ",
                               empty_elements_left_, " more elements that encode to no bytes allowed (",
                               kMaxEmptyElements, " per decode)"));
    }
    return Fail(absl::StrCat("count ", *count, " is more than the ", remaining(), " bytes left can hold"));
  }
  return true;
}

bool Decoder::CountEmptyElement() {
  if (empty_elements_left_ == 0) {
    return Fail(
        absl::StrCat("more than ", kMaxEmptyElements, " elements that encode to no bytes (the limit per decode)"));
  }
  --empty_elements_left_;
  return true;
}

}  // namespace constellation
