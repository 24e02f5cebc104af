#pragma once

// nodes.toml: the master's list of the cluster's nodes, in the seeds' format:
//
//   [[nodes]]
//   fabric_addr = "10.0.0.1:9999"   # the node daemon's address
//   bridge_bind = "10.0.0.1:8888"   # exactly one node: where cdeploy connects
//   mem = "100 GiB"                 # capacity (a size, or a number of bytes)
//   cpu = 16                        # logical cores (a number, or a string "0.5")
//
// Any valid TOML (parsed by toml++) that says the same is accepted: inline
// tables (`nodes = [{ fabric_addr = '...', ... }]`), single-quoted and
// multi-line strings, integer byte counts for mem. Every error names the file
// and line: TOML syntax errors where toml++ found them, a missing or bad key
// at its node or key.
//
// Plain functions, no state: callable from any thread.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/core/resources.h"

namespace constellation::daemon {

struct NodeConfig {
  std::string fabric_addr;                 // host:port
  std::optional<std::string> bridge_bind;  // host:port
  Resources capacity;
  int line = 0;  // of its [[nodes]] header (or its inline table)
};

struct ClusterConfig {
  std::vector<NodeConfig> nodes;
  // The node that has bridge_bind (there is exactly one).
  const NodeConfig& bridge_node() const;
};

// A nodes.toml larger than this is refused before it is parsed.
inline constexpr size_t kMaxNodesTomlBytes = 4 << 20;

// `filename` is only used in messages.
absl::StatusOr<ClusterConfig> ParseNodesToml(absl::string_view text, absl::string_view filename);
absl::StatusOr<ClusterConfig> LoadNodesToml(const std::string& path);

// Splits "host:port" ("[v6]:port" for IPv6); an error names what is wrong.
absl::Status ValidateHostPort(absl::string_view address);

}  // namespace constellation::daemon
