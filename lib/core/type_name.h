#pragma once

#include <cstdint>
#include <string_view>

namespace constellation {

// The compiler's name for T ("int", "std::vector<int>"), fixed at compile time.
// Every process of a program is the same binary, so names agree across processes.
// consteval: never computed at run time (a send and a recv name their type on
// every message; searching and hashing the name each time showed in profiles).
template <class T>
consteval std::string_view type_name() {
  std::string_view f = __PRETTY_FUNCTION__;  // "... type_name() [with T = int; ...]"
  constexpr std::string_view kKey = "T = ";
  size_t start = f.find(kKey) + kKey.size();
  size_t end = f.find_first_of(";]", start);
  return f.substr(start, end - start);
}

// A 64-bit FNV-1a fingerprint of type_name<T>(): names a channel's element type
// on the wire so that a mismatch is caught instead of decoded as garbage.
template <class T>
consteval uint64_t type_fingerprint() {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : type_name<T>()) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace constellation
