#pragma once

#include "absl/status/statusor.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "proto/process.pb.h"

namespace constellation::internal {

// Conversions between the core types and their control-plane messages.
pb::Pid ToProto(const Pid& pid);
pb::Resources ToProto(const Resources& resources);

// Errors name what was wrong (a peer sent it, so it is not trusted).
absl::StatusOr<Pid> FromProto(const pb::Pid& pid);
Resources FromProto(const pb::Resources& resources);

}  // namespace constellation::internal
