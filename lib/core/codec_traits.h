#pragma once

// Compile-time classification of types for the codec (lib/core/codec.h).
// Internal: users never name anything here.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cereal/cereal.hpp>
#include <cereal/types/base_class.hpp>

namespace constellation {

class Encoder;
class Decoder;

namespace codec_internal {

enum class Kind {
  kArithmetic,
  kEnum,
  kString,
  kArray,
  kContainer,
  kOptional,
  kTuple,
  kVariant,
  kProtobuf,
  kNameValuePair,
  kBaseClass,
  kUser,
  kUnsupported,
};

template <class T, template <class...> class Template>
inline constexpr bool is_instance = false;
template <template <class...> class Template, class... Args>
inline constexpr bool is_instance<Template<Args...>, Template> = true;

template <class T>
inline constexpr bool is_std_array = false;
template <class T, size_t N>
inline constexpr bool is_std_array<std::array<T, N>> = true;

template <class T>
inline constexpr bool is_nvp = false;
template <class T>
inline constexpr bool is_nvp<cereal::NameValuePair<T>> = true;

template <class T>
inline constexpr bool is_base_class = false;
template <class T>
inline constexpr bool is_base_class<cereal::base_class<T>> = true;
template <class T>
inline constexpr bool is_base_class<cereal::virtual_base_class<T>> = true;

// A protobuf message: google::protobuf::MessageLite's interface, recognised
// by its shape so that this header needs no protobuf header (a program that
// sends messages includes their generated .pb.h, which brings protobuf in).
template <class T>
concept is_protobuf_message = requires(const T& message, T& target, const void* data, int size) {
  { message.SerializeAsString() } -> std::convertible_to<std::string>;
  { target.ParseFromArray(data, size) } -> std::convertible_to<bool>;
  { message.ByteSizeLong() } -> std::convertible_to<size_t>;
  message.GetTypeName();
};

template <class C>
concept has_push_back = requires(C c, typename C::value_type v) {
  c.push_back(std::move(v));
};

template <class C>
concept has_reserve = requires(C c, size_t n) {
  c.reserve(n);
};

// Anything iterable with a size that can be cleared and filled again: the
// standard sequence and associative containers (and absl's, which match too).
template <class C>
concept is_container = requires(C c, const C cc, typename C::value_type v) {
  cc.begin();
  cc.end();
  { cc.size() } -> std::convertible_to<size_t>;
  c.clear();
  requires has_push_back<C> || requires { c.insert(c.end(), std::move(v)); };
};

template <class C>
inline constexpr bool is_contiguous_arithmetic =
    is_instance<C, std::vector>&& std::is_arithmetic_v<typename C::value_type> &&
    !std::is_same_v<typename C::value_type, bool>;

template <class T, class Archive>
concept has_member_serialize = requires(Archive& ar, T& t) {
  cereal::access::member_serialize(ar, t);
};
template <class T, class Archive>
concept has_member_save = requires(Archive& ar, const T& t) {
  cereal::access::member_save(ar, t);
};
template <class T, class Archive>
concept has_member_load = requires(Archive& ar, T& t) {
  cereal::access::member_load(ar, t);
};
template <class T, class Archive>
concept has_free_serialize = requires(Archive& ar, T& t) {
  serialize(ar, t);
};
template <class T, class Archive>
concept has_free_save = requires(Archive& ar, const T& t) {
  save(ar, t);
};
template <class T, class Archive>
concept has_free_load = requires(Archive& ar, T& t) {
  load(ar, t);
};

template <class T>
concept is_user_type = std::is_default_constructible_v<T> &&
    (has_member_serialize<T, Encoder> || (has_member_save<T, Encoder> && has_member_load<T, Decoder>) ||
     has_free_serialize<T, Encoder> || (has_free_save<T, Encoder> && has_free_load<T, Decoder>));

template <class T>
constexpr Kind kind_of() {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_arithmetic_v<U>) {
    return Kind::kArithmetic;
  } else if constexpr (std::is_enum_v<U>) {
    return Kind::kEnum;
  } else if constexpr (std::is_same_v<U, std::string>) {
    return Kind::kString;
  } else if constexpr (is_protobuf_message<U>) {
    return Kind::kProtobuf;
  } else if constexpr (is_nvp<U>) {
    return Kind::kNameValuePair;
  } else if constexpr (is_base_class<U>) {
    return Kind::kBaseClass;
  } else if constexpr (is_user_type<U>) {
    // Before the structural checks: a user type that also looks like a
    // container or tuple serializes the way its author said.
    return Kind::kUser;
  } else if constexpr (is_std_array<U>) {
    return Kind::kArray;
  } else if constexpr (is_instance<U, std::optional>) {
    return Kind::kOptional;
  } else if constexpr (is_instance<U, std::variant>) {
    return Kind::kVariant;
  } else if constexpr (is_instance<U, std::pair> || is_instance<U, std::tuple>) {
    return Kind::kTuple;
  } else if constexpr (is_container<U>) {
    return Kind::kContainer;
  } else {
    return Kind::kUnsupported;
  }
}

// The fewest bytes a T can encode to; bounds element counts read from input.
template <class T>
constexpr size_t min_encoded_size() {
  constexpr Kind kind = kind_of<T>();
  if constexpr (kind == Kind::kArithmetic || kind == Kind::kEnum) {
    return sizeof(T);
  } else if constexpr (kind == Kind::kArray) {
    return std::tuple_size_v<T> * min_encoded_size<typename T::value_type>();
  } else if constexpr (kind == Kind::kTuple) {
    return []<size_t... I>(std::index_sequence<I...>) {
      return (size_t{0} + ... + min_encoded_size<std::remove_cvref_t<std::tuple_element_t<I, T>>>());
    }
    (std::make_index_sequence<std::tuple_size_v<T>>());
  } else if constexpr (kind == Kind::kString || kind == Kind::kContainer || kind == Kind::kOptional ||
                       kind == Kind::kVariant || kind == Kind::kProtobuf) {
    return 1;
  } else {
    return 0;  // user types may encode to nothing
  }
}

// pair<const K, V> (a map's value_type) decodes as pair<K, V>.
template <class T>
struct mutable_value {
  using type = T;
};
template <class K, class V>
struct mutable_value<std::pair<const K, V>> {
  using type = std::pair<K, V>;
};
template <class T>
using mutable_value_t = typename mutable_value<T>::type;

// Makes `v` hold a default-constructed alternative number `index` (< size).
template <class... Ts>
void EmplaceVariant(std::variant<Ts...>& v, size_t index) {
  [&]<size_t... I>(std::index_sequence<I...>) { ((index == I ? (v.template emplace<I>(), 0) : 0), ...); }
  (std::index_sequence_for<Ts...>());
}

}  // namespace codec_internal
}  // namespace constellation
