#pragma once

// The checks of Master.Join and Master.Leave. Their requests come from the
// network (from a node certificate, but any node's): every field is bounded
// and checked before the master dials or allocates anything for it.

#include <string>

#include "absl/status/statusor.h"
#include "lib/core/resources.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon::master {

struct JoinSpec {
  std::string addr;
  Resources capacity;
};

// Bounds of a join.
inline constexpr size_t kMaxJoinAddr = 255;
inline constexpr uint64_t kMinJoinMem = 1ull << 20;  // 1 MiB
inline constexpr uint64_t kMaxJoinMem = 1ull << 50;  // 1 PiB
inline constexpr double kMinJoinCpu = 0.01;
inline constexpr double kMaxJoinCpu = 4096;

// "host:port" with a host of letters, digits, '.', '-' and '_' (or a
// bracketed IPv6 address), a port of 1-65535, not a wildcard (0.0.0.0, [::]):
// what the master can dial. INVALID_ARGUMENT naming the problem otherwise.
absl::Status ValidateNodeAddr(const std::string& addr);
absl::StatusOr<JoinSpec> ValidateJoin(const pb::JoinRequest& request);

}  // namespace constellation::daemon::master
