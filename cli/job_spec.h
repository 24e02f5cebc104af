#pragma once

// The JobSpec cdeploy submits for `cdeploy [submit] BINARY [-- args]`: argv
// (the binary's base name, then the program's arguments), the environment
// the allow-list forwards (env_filter.h), labels, TTL, stdin attached unless
// detached, the binary's name for people, and a fresh request_id so that a
// Submit retried after a lost answer returns the same job instead of a second.
//
// Plain functions; thread-compatible.

#include <string>

#include "cli/args.h"
#include "proto/jobs.pb.h"

namespace constellation::cli {

// `environ` is null-terminated ("NAME=value" entries).
v1::JobSpec MakeJobSpec(const Args& args, const std::string& binary_path, const v1::BinaryRef& binary, char** environ,
                        const std::string& request_id);

// 32 random hex digits (from the kernel's random source).
std::string NewRequestId();

}  // namespace constellation::cli
