#pragma once

// The codec: how values cross process boundaries, as spawn arguments and as
// channel messages. One binary format for everything:
//
//   arithmetic, enums    fixed width, little-endian (bool is one byte, 0 or 1)
//   std::string          varint length, bytes
//   containers           varint count, elements (vector, deque, list, map,
//                        multimap, set, multiset, unordered_*); std::array: elements
//   optional             one byte (0 or 1), value if 1
//   pair, tuple          members in order
//   variant              varint index, value
//   protobuf messages    varint length, the message's own wire format
//   user types           whatever their cereal-style serialize() writes:
//                          template <class Archive> void serialize(Archive& ar) { ar(a, b, c); }
//                        (also save()/load() pairs, free serialize(ar, t), private
//                        members with `friend class cereal::access`, CEREAL_NVP and
//                        cereal::base_class)
//
// Decoding never trusts the input: a truncated or corrupted buffer gives an
// error, never a crash, and a count is checked against the bytes left before
// anything is allocated for it, so a length that claims 10 GiB allocates nothing.
// Elements that encode to no bytes at all (an empty struct) share one allowance
// of kMaxEmptyElements per decode, so one value decoded from N bytes holds at
// most N + 2^16 container elements, however deeply its containers nest.

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include <cereal/cereal.hpp>
#include <cereal/types/base_class.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/core/codec_traits.h"
#include "lib/core/type_name.h"

namespace constellation {

static_assert(std::endian::native == std::endian::little, "the codec assumes a little-endian host");

// Appends encoded values to a string it does not own. Also the Archive that
// user serialize() functions receive when a value is encoded.
class Encoder {
 public:
  // `*out` must outlive the Encoder; bytes are appended to it.
  explicit Encoder(std::string* out) : out_(out) {}

  template <class... T>
  void operator()(T&&... values) {
    (Encode(values), ...);
  }
  template <class T>
  Encoder& operator&(T&& value) {
    Encode(value);
    return *this;
  }
  template <class T>
  Encoder& operator<<(T&& value) {
    Encode(value);
    return *this;
  }

  void WriteBytes(const void* data, size_t size) { out_->append(static_cast<const char*>(data), size); }
  void WriteVarint(uint64_t value);

  template <class T>
  void Encode(const T& value);

 private:
  template <class T>
  void EncodeUser(const T& value);

  std::string* out_;
};

// Reads encoded values from a buffer it does not own. The first failure sticks:
// later reads do nothing and status() reports the first error. Also the Archive
// that user serialize() functions receive when a value is decoded.
class Decoder {
 public:
  // `input` must outlive the Decoder.
  explicit Decoder(absl::string_view input) : in_(input) {}

  template <class... T>
  void operator()(T&&... values) {
    (Decode(values), ...);
  }
  template <class T>
  Decoder& operator&(T&& value) {
    Decode(value);
    return *this;
  }
  template <class T>
  Decoder& operator>>(T&& value) {
    Decode(value);
    return *this;
  }

  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }
  size_t remaining() const { return in_.size() - pos_; }

  // Records the first failure; always returns false so callers can `return Fail(...)`.
  bool Fail(absl::string_view why);
  bool ReadBytes(void* data, size_t size);
  bool ReadVarint(uint64_t* value);
  // Reads a count of elements each at least `min_size` bytes long and checks it
  // against the bytes left. Elements that may encode to nothing (min_size 0)
  // may also draw on what is left of this decode's empty-element allowance.
  bool ReadCount(size_t min_size, uint64_t* count);
  // Records one container element that consumed no input; fails once more
  // than kMaxEmptyElements have in this decode.
  bool CountEmptyElement();
  // A view of the next `size` bytes, consumed.
  bool ReadView(size_t size, absl::string_view* view);

  template <class T>
  void Decode(T& value);

  // How many container elements that encode to no bytes one decode may create,
  // across all of its containers (bytes bound every other element).
  static constexpr uint64_t kMaxEmptyElements = uint64_t{1} << 16;

 private:
  template <class T>
  void DecodeUser(T& value);
  template <class C>
  void DecodeContainer(C& container);

  absl::string_view in_;
  size_t pos_ = 0;
  uint64_t empty_elements_left_ = kMaxEmptyElements;
  absl::Status status_;
};

// ---- Public entry points ------------------------------------------------

// Appends the encoding of `value` to `*out`.
template <class T>
void encode(const T& value, std::string* out) {
  Encoder(out).Encode(value);
}

template <class T>
std::string encode(const T& value) {
  std::string out;
  encode(value, &out);
  return out;
}

// Decodes `bytes`, which must hold exactly one encoded T.
template <class T>
absl::Status decode_into(absl::string_view bytes, T* value) {
  Decoder decoder(bytes);
  decoder.Decode(*value);
  if (decoder.ok() && decoder.remaining() != 0) {
    decoder.Fail(std::to_string(decoder.remaining()) + " bytes left over");
  }
  if (decoder.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(std::string("cannot decode ") + std::string(type_name<T>()) + ": " +
                                    std::string(decoder.status().message()));
}

template <class T>
absl::StatusOr<T> decode(absl::string_view bytes) {
  static_assert(std::is_default_constructible_v<T>, "decode<T>() needs a default-constructible T");
  T value{};
  absl::Status status = decode_into(bytes, &value);
  if (!status.ok()) return status;
  return value;
}

// ---- Implementation -----------------------------------------------------

template <class T>
void Encoder::Encode(const T& value) {
  using codec_internal::Kind;
  constexpr Kind kind = codec_internal::kind_of<T>();
  static_assert(kind != Kind::kUnsupported,
                "this type cannot cross processes: give it a cereal-style member "
                "`template <class Archive> void serialize(Archive& ar) { ar(field1, field2); }`, "
                "or use a supported type (arithmetic, std::string, std containers, optional, "
                "pair, tuple, variant, protobuf message)");
  if constexpr (kind == Kind::kArithmetic) {
    WriteBytes(&value, sizeof(T));
  } else if constexpr (kind == Kind::kEnum) {
    Encode(static_cast<std::underlying_type_t<T>>(value));
  } else if constexpr (kind == Kind::kString) {
    WriteVarint(value.size());
    WriteBytes(value.data(), value.size());
  } else if constexpr (kind == Kind::kArray) {
    for (const auto& element : value) Encode(element);
  } else if constexpr (kind == Kind::kContainer) {
    using E = typename T::value_type;
    WriteVarint(value.size());
    if constexpr (codec_internal::is_contiguous_arithmetic<T>) {
      WriteBytes(value.data(), value.size() * sizeof(E));
    } else {
      for (const auto& element : value) {
        if constexpr (std::is_same_v<E, bool>) {
          Encode(static_cast<bool>(element));
        } else {
          Encode(element);
        }
      }
    }
  } else if constexpr (kind == Kind::kOptional) {
    Encode(value.has_value());
    if (value) Encode(*value);
  } else if constexpr (kind == Kind::kTuple) {
    std::apply([this](const auto&... members) { (Encode(members), ...); }, value);
  } else if constexpr (kind == Kind::kVariant) {
    WriteVarint(value.index());
    std::visit([this](const auto& alternative) { Encode(alternative); }, value);
  } else if constexpr (kind == Kind::kProtobuf) {
    std::string bytes = value.SerializeAsString();
    WriteVarint(bytes.size());
    WriteBytes(bytes.data(), bytes.size());
  } else if constexpr (kind == Kind::kNameValuePair) {
    Encode(value.value);
  } else if constexpr (kind == Kind::kBaseClass) {
    Encode(*value.base_ptr);
  } else {
    EncodeUser(value);
  }
}

template <class T>
void Encoder::EncodeUser(const T& value) {
  // cereal's serialize() is non-const by convention (one function for both
  // directions); encoding only reads through it.
  T& mutable_value = const_cast<T&>(value);
  if constexpr (codec_internal::has_member_serialize<T, Encoder>) {
    cereal::access::member_serialize(*this, mutable_value);
  } else if constexpr (codec_internal::has_member_save<T, Encoder>) {
    cereal::access::member_save(*this, value);
  } else if constexpr (codec_internal::has_free_serialize<T, Encoder>) {
    serialize(*this, mutable_value);
  } else {
    save(*this, value);
  }
}

template <class T>
void Decoder::Decode(T& value) {
  using codec_internal::Kind;
  constexpr Kind kind = codec_internal::kind_of<T>();
  static_assert(kind != Kind::kUnsupported,
                "this type cannot cross processes: give it a cereal-style member "
                "`template <class Archive> void serialize(Archive& ar) { ar(field1, field2); }`");
  if (!ok()) return;
  if constexpr (kind == Kind::kArithmetic) {
    if constexpr (std::is_same_v<T, bool>) {
      uint8_t byte = 0;
      if (ReadBytes(&byte, 1)) {
        if (byte > 1) {
          Fail("bad bool byte");
          return;
        }
        value = byte == 1;
      }
    } else {
      ReadBytes(&value, sizeof(T));
    }
  } else if constexpr (kind == Kind::kEnum) {
    std::underlying_type_t<T> raw{};
    Decode(raw);
    value = static_cast<T>(raw);
  } else if constexpr (kind == Kind::kString) {
    uint64_t size = 0;
    absl::string_view bytes;
    if (!ReadCount(1, &size) || !ReadView(size, &bytes)) return;
    value.assign(bytes.data(), bytes.size());  // one copy, no zero-fill first (resize would)
  } else if constexpr (kind == Kind::kArray) {
    for (auto& element : value) Decode(element);
  } else if constexpr (kind == Kind::kContainer) {
    DecodeContainer(value);
  } else if constexpr (kind == Kind::kOptional) {
    bool present = false;
    Decode(present);
    if (!ok()) return;
    if (!present) {
      value.reset();
      return;
    }
    value.emplace();
    Decode(*value);
  } else if constexpr (kind == Kind::kTuple) {
    std::apply([this](auto&... members) { (Decode(members), ...); }, value);
  } else if constexpr (kind == Kind::kVariant) {
    uint64_t index = 0;
    if (!ReadVarint(&index)) return;
    if (index >= std::variant_size_v<T>) {
      Fail("variant index out of range");
      return;
    }
    codec_internal::EmplaceVariant(value, index);
    std::visit([this](auto& alternative) { Decode(alternative); }, value);
  } else if constexpr (kind == Kind::kProtobuf) {
    uint64_t size = 0;
    absl::string_view bytes;
    if (!ReadCount(1, &size) || !ReadView(size, &bytes)) return;
    if (!value.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      Fail(std::string("bad ") + value.GetTypeName() + " message");
    }
  } else if constexpr (kind == Kind::kNameValuePair) {
    Decode(value.value);
  } else if constexpr (kind == Kind::kBaseClass) {
    Decode(*value.base_ptr);
  } else {
    DecodeUser(value);
  }
}

template <class C>
void Decoder::DecodeContainer(C& container) {
  using E = typename C::value_type;
  uint64_t count = 0;
  if (!ReadCount(codec_internal::min_encoded_size<E>(), &count)) return;
  container.clear();
  if constexpr (codec_internal::is_contiguous_arithmetic<C>) {
    container.resize(count);
    ReadBytes(container.data(), count * sizeof(E));
  } else {
    if constexpr (codec_internal::has_reserve<C>) container.reserve(std::min<uint64_t>(count, remaining()));
    for (uint64_t i = 0; i < count && ok(); ++i) {
      // Maps hold pair<const K, V>; decode into a mutable pair, then move in.
      codec_internal::mutable_value_t<E> element{};
      [[maybe_unused]] size_t start = pos_;
      Decode(element);
      if (!ok()) return;
      // Only elements that may encode to nothing pay for this check; the
      // count of any other kind is bounded by the bytes left.
      if constexpr (codec_internal::min_encoded_size<E>() == 0) {
        if (pos_ == start && !CountEmptyElement()) return;
      }
      if constexpr (codec_internal::has_push_back<C>) {
        container.push_back(std::move(element));
      } else {
        container.insert(container.end(), std::move(element));
      }
    }
  }
}

template <class T>
void Decoder::DecodeUser(T& value) {
  if constexpr (codec_internal::has_member_serialize<T, Decoder>) {
    cereal::access::member_serialize(*this, value);
  } else if constexpr (codec_internal::has_member_load<T, Decoder>) {
    cereal::access::member_load(*this, value);
  } else if constexpr (codec_internal::has_free_serialize<T, Decoder>) {
    serialize(*this, value);
  } else {
    load(*this, value);
  }
}

}  // namespace constellation
