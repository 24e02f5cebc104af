#pragma once

// Helpers every channel scenario (scenarios.h) uses: failing a process with a
// "FAIL ..." line on stderr and exit code 1, printing "RESULT ..." lines,
// spawning, and values whose content depends on their index.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "constellation/constellation.h"

namespace channel_scenarios {

// Prints "FAIL [<pid>] <what>" on stderr and exits 1.
[[noreturn]] void Fail(const std::string& what);
void Expect(bool ok, const std::string& what);
void ExpectOk(const absl::Status& status, const std::string& what);

template <class T>
T Get(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

// One line on stdout, flushed at once (the tests look for these).
void Report(const std::string& line);

// recv must report that the remote is gone (kUnavailable): not a value, not a hang.
template <class T>
void ExpectGone(constellation::Receiver<T>& receiver, const std::string& what) {
  absl::StatusOr<T> value = receiver.recv();
  if (value.ok()) Fail(absl::StrCat(what, ": recv returned an extra value instead of an error"));
  if (!absl::IsUnavailable(value.status())) {
    Fail(absl::StrCat(what, ": expected kUnavailable once the remote is gone, got ", value.status().ToString()));
  }
}

template <class F, class... Args>
constellation::Pid SpawnWith(const constellation::Resources& resources, F fn, Args&&... args) {
  absl::StatusOr<constellation::Pid> child = constellation::spawn(resources, fn, std::forward<Args>(args)...);
  if (!child.ok()) Fail(absl::StrCat("spawn: ", child.status().ToString()));
  return *child;
}

template <class F, class... Args>
constellation::Pid Spawn(F fn, Args&&... args) {
  return SpawnWith(constellation::Resources(), fn, std::forward<Args>(args)...);
}

// What the processes of the 100 MiB value scenario use: the value, its
// encoding and the received copy (memory limits are enforced).
inline constexpr constellation::Resources kBigValueResources{1024 * constellation::kMiB, 1};

// A value whose content depends on its index, to catch loss, duplication and reordering.
std::string Payload(int64_t index, size_t length);
void ExpectPayload(const std::string& got, int64_t index, size_t length, const std::string& what);

// The length of the i-th value of the exit and relay streams: varied, up to 20 KB.
size_t StreamLength(int64_t i);

inline constexpr size_t kOneMiB = size_t{1} << 20;

// Resident set size of this process in bytes.
uint64_t Rss();

// argv[index] as an int, `fallback` if there is none.
int IntArg(int argc, char** argv, int index, int fallback);

}  // namespace channel_scenarios
