#pragma once

// What a fuzz target (see tools/fuzz/fuzz.bzl) defines beside
// LLVMFuzzerTestOneInput: inputs made by the real encoders, so that the
// fuzzer starts from valid ones. The replay test runs them on every
// `bazel test`, and `bazel run //pkg:name_replay -- --write_seeds=DIR`
// writes them as files (how each target's corpus directory was seeded).

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace constellation::fuzz {

struct Seed {
  std::string name;   // a file name: [a-z0-9_-]
  std::string bytes;  // one input to LLVMFuzzerTestOneInput
};

std::vector<Seed> Seeds();

// Stops the process with a message when a property the fuzz target checks
// does not hold: libFuzzer (and the replay test) report it as a finding.
[[noreturn]] inline void Violated(const char* what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

}  // namespace constellation::fuzz
