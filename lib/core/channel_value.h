#pragma once

// The form a channel's value takes in a data frame (docs/channels.md). Most
// types travel as their codec encoding (codec.h). A string, or a vector of
// numbers, travels as its bytes alone: the frame's length already says how
// many, so the codec's count would only stand between the bytes and the
// buffer they arrive in. That lets a Sender write such a value from the
// caller's memory (Peer::SendParts) and a Receiver hand a big string over in
// the buffer the data plane read it into, with no copy at either end.
//
// Sender<T> and Receiver<T> only exchange values whose type fingerprints
// match, so both ends agree on the form by T alone.

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "lib/core/codec.h"
#include "lib/core/type_name.h"

namespace constellation::channel_internal {

// Types sent as their bytes alone: std::string, and vectors of numbers.
template <class T>
struct SentInPlace : std::is_same<T, std::string> {};
template <class E, class A>
struct SentInPlace<std::vector<E, A>>
    : std::bool_constant<codec_internal::is_contiguous_arithmetic<std::vector<E, A>>> {};
template <class T>
inline constexpr bool kSentInPlace = SentInPlace<T>::value;

// Strings at least this long take the frame's buffer (if it is not much
// bigger than they are); shorter ones are copied, so their buffer stays with
// the receiver for the next frame.
inline constexpr size_t kTakenMin = 16 << 10;

// The bytes a value of such a type is sent as (a view of its memory, valid
// while the value is).
template <class T>
std::string_view InPlaceBytes(const T& value) {
  static_assert(kSentInPlace<T>);
  return std::string_view(reinterpret_cast<const char*>(value.data()), value.size() * sizeof(value[0]));
}

// Replaces *out with the payload of `value`.
template <class T>
void EncodeValue(const T& value, std::string* out) {
  if constexpr (kSentInPlace<T>) {
    out->assign(InPlaceBytes(value));
  } else {
    out->clear();
    encode(value, out);
  }
}

// The value a payload holds. A big string takes *payload's buffer (leaving
// it empty) unless the buffer is more than twice its size (a recycled
// buffer of a bigger value: the program would hold it all); any other value
// leaves *payload as it was.
template <class T>
absl::StatusOr<T> DecodeValue(std::string* payload) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (payload->size() >= kTakenMin && payload->capacity() <= 2 * payload->size()) return std::move(*payload);
    return *payload;
  } else if constexpr (kSentInPlace<T>) {
    using E = typename T::value_type;
    if (payload->size() % sizeof(E) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("cannot decode ", std::string(type_name<T>()), ": ",
                                                     payload->size(), " bytes are not a whole number of ", sizeof(E),
                                                     "-byte elements"));
    }
    T value(payload->size() / sizeof(E));
    if (!value.empty()) std::memcpy(value.data(), payload->data(), payload->size());
    return value;
  } else {
    T value{};
    absl::Status status = decode_into(*payload, &value);
    if (!status.ok()) return status;
    return value;
  }
}

}  // namespace constellation::channel_internal
