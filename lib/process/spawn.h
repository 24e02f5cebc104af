#pragma once

// spawn() and try_spawn(): run a function in a new process.

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "lib/core/codec.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "lib/process/spawn_internal.h"

namespace constellation {
namespace process_internal {

template <class T>
struct SpawnSignature {
  static constexpr bool kValid = false;
};
template <class... Params>
struct SpawnSignature<void (*)(Pid, Params...)> {
  static constexpr bool kValid = true;
  using Stored = std::tuple<std::decay_t<Params>...>;
  static constexpr size_t kArity = sizeof...(Params);
};

// The function pointer a plain function or captureless lambda decays to.
template <class F>
concept DecaysToFunctionPointer = requires(F f) {
  {+f};
  requires std::is_pointer_v<decltype(+f)> && std::is_function_v<std::remove_pointer_t<decltype(+f)>>;
};

template <class F>
using FunctionPointerOf = decltype(+std::declval<F>());

// Runs in the new process: decodes the arguments and calls the function.
template <class Fp>
void RunWithDecodedArgs(GenericFn fn, const Pid& parent, absl::string_view args) {
  typename SpawnSignature<Fp>::Stored values;
  absl::Status status = decode_into(args, &values);
  if (!status.ok()) {
    fprintf(stderr, "constellation: spawn arguments arrived damaged: %s\n", std::string(status.message()).c_str());
    _exit(127);
  }
  std::apply([&](auto&... v) { reinterpret_cast<Fp>(fn)(parent, v...); }, values);
}

template <class F, class... Args>
absl::StatusOr<Pid> Spawn(bool wait, const Resources& resources, F&& fn, Args&&... args) {
  static_assert(DecaysToFunctionPointer<std::decay_t<F>>,
                "spawn() runs a plain function or a captureless lambda in the new process: a lambda's "
                "captures cannot cross processes, so pass them as spawn() arguments instead");
  if constexpr (DecaysToFunctionPointer<std::decay_t<F>>) {
    using Fp = FunctionPointerOf<std::decay_t<F>>;
    using Signature = SpawnSignature<Fp>;
    static_assert(Signature::kValid, "the spawned function must have the signature void(Pid parent, Args...)");
    if constexpr (Signature::kValid) {
      static_assert(Signature::kArity == sizeof...(Args),
                    "spawn() got a different number of arguments than the function takes after its Pid");
      if constexpr (Signature::kArity == sizeof...(Args)) {
        typename Signature::Stored values(std::forward<Args>(args)...);
        return SpawnProcess(wait, resources, &RunWithDecodedArgs<Fp>, reinterpret_cast<GenericFn>(+fn), encode(values));
      }
    }
  }
  return absl::InternalError("unreachable");
}

}  // namespace process_internal

// Runs fn(pid(), args...) in a new process with the given resources and
// returns the new process's Pid before it runs, so channels to it can be
// opened at once. fn is a plain function or a captureless lambda taking
// (Pid parent, Args...); args are encoded with the codec (lib/core/codec.h)
// and decoded in the child. The child exits 0 when fn returns. Thread-safe.
//
// spawn() waits for capacity and try_spawn() answers ResourceExhausted at
// once when nothing fits. In cluster mode the master places the process on a
// node with room. In local mode the bridge accounts every process of the
// program, the root's init() resources included, against the machine's
// memory and CPUs (or CONSTELLATION_CAPACITY="8 GiB,4"): waiting spawn()s
// are served in order as exits free room, and one that only an exit could
// serve fails with ResourceExhausted once every process holding room is
// itself waiting in spawn().
template <class F, class... Args>
absl::StatusOr<Pid> spawn(Resources resources, F&& fn, Args&&... args) {
  return process_internal::Spawn(/*wait=*/true, resources, std::forward<F>(fn), std::forward<Args>(args)...);
}

template <class F, class... Args>
absl::StatusOr<Pid> try_spawn(Resources resources, F&& fn, Args&&... args) {
  return process_internal::Spawn(/*wait=*/false, resources, std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace constellation
