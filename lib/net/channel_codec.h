#pragma once

// How a channel carries a value of type T in a frame's payload: the codec's
// encoding (lib/core/codec.h), except for std::string, whose payload is the
// string's bytes as they are (the frame header carries the length). So a
// receiver of strings takes the buffer the bytes were read into as the string
// it returns (no copy), and a sender of strings or of vectors of numbers
// hands the data plane the value's own memory (InPlace), which it writes from
// where it is when the connection is free (Peer::SendParts).
//
// Both ends of a channel are the same program, so they agree on T's form by
// its type fingerprint; nothing on the wire says which form a payload has.

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/core/codec.h"
#include "lib/core/type_name.h"

namespace constellation::net {

// A value whose payload is a short prefix and then bytes already in memory:
// a string, or a vector of numbers (which the codec writes as a count and
// the elements' bytes).
template <class T>
struct SentInPlace : std::is_same<T, std::string> {};
template <class E, class A>
struct SentInPlace<std::vector<E, A>>
    : std::bool_constant<codec_internal::is_contiguous_arithmetic<std::vector<E, A>>> {};
template <class T>
inline constexpr bool kSentInPlace = SentInPlace<T>::value;

// The payload of an in-place value: `prefix` (empty, or the codec's element
// count) then `bytes`, the value's own memory (valid while the value is).
struct InPlace {
  std::string prefix;  // at most a varint: no allocation
  std::string_view bytes;
};

template <class T>
InPlace InPlaceView(const T& value) {
  static_assert(kSentInPlace<T>);
  InPlace view;
  if constexpr (std::is_same_v<T, std::string>) {
    view.bytes = value;
  } else {
    Encoder(&view.prefix).WriteVarint(value.size());
    view.bytes =
        std::string_view(reinterpret_cast<const char*>(value.data()), value.size() * sizeof(typename T::value_type));
  }
  return view;
}

// Appends the payload of `value` to *out.
template <class T>
void EncodeForChannel(const T& value, std::string* out) {
  if constexpr (std::is_same_v<T, std::string>) {
    out->append(value);
  } else {
    encode(value, out);
  }
}

// Decodes a payload into *value. A string takes *payload's buffer (leaving it
// empty) unless that buffer is much bigger than the string, which then gets a
// copy of its own: a value the program keeps holds no more than it needs.
template <class T>
absl::Status DecodeFromChannel(std::string* payload, T* value) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (payload->capacity() <= 2 * payload->size() + 64) {
      value->swap(*payload);
      payload->clear();
    } else {
      value->assign(*payload);
    }
    return absl::OkStatus();
  } else {
    return decode_into(*payload, value);
  }
}

}  // namespace constellation::net
