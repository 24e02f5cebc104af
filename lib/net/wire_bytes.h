#pragma once

// Fixed-size fields of the data plane's wire formats (frames, hellos):
// written and read at a moving pointer, in the host's byte order (the data
// plane requires a little-endian host, as lib/core/codec.h does). The caller
// has checked that the bytes are there.

#include <cstring>

namespace constellation::net::wire {

template <class T>
void Put(char*& p, T value) {
  std::memcpy(p, &value, sizeof(T));
  p += sizeof(T);
}

template <class T>
T Get(const char*& p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  p += sizeof(T);
  return value;
}

}  // namespace constellation::net::wire
