#pragma once

// How a submitted function reaches a worker process: as two code addresses
// (the function, and a runner instantiated for its type that decodes the
// arguments, calls it and encodes its result) and the encoded arguments,
// as spawn() moves a function (lib/process/spawn.h). Internal; users call
// ProcessPool::submit (process_pool.h). Light, since it reaches every user's
// translation unit.

#include <string>
#include <tuple>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "lib/core/codec.h"

namespace constellation::pool_internal {

// A type-erased function pointer (really an R (*)(Args...)).
using GenericFn = void (*)();
// Runs in the worker: decodes `args`, calls `fn`, encodes its result into
// *result. An error only when the arguments do not decode.
using Runner = absl::Status (*)(GenericFn fn, absl::string_view args, std::string* result);

template <class T>
struct TaskSignature {
  static constexpr bool kValid = false;
};
template <class R, class... Params>
struct TaskSignature<R (*)(Params...)> {
  static constexpr bool kValid = true;
  using Result = R;
  using Stored = std::tuple<std::decay_t<Params>...>;
  static constexpr size_t kArity = sizeof...(Params);
};

template <class Fp>
absl::Status RunTask(GenericFn fn, absl::string_view args, std::string* result) {
  using Signature = TaskSignature<Fp>;
  typename Signature::Stored values;
  absl::Status status = decode_into(args, &values);
  if (!status.ok())
    return absl::InvalidArgumentError(absl::StrCat("the task's arguments arrived damaged: ", status.message()));
  Fp f = reinterpret_cast<Fp>(fn);
  if constexpr (std::is_void_v<typename Signature::Result>) {
    std::apply([&](auto&... v) { f(v...); }, values);
  } else {
    encode(std::apply([&](auto&... v) { return f(v...); }, values), result);
  }
  return absl::OkStatus();
}

}  // namespace constellation::pool_internal
