#pragma once

// nodes.toml: the master's list of the cluster's nodes, in the seeds' format:
//
//   [[nodes]]
//   fabric_addr = "10.0.0.1:9999"   # the node daemon's address
//   bridge_bind = "10.0.0.1:8888"   # exactly one node: where cdeploy connects
//   mem = "100 GiB"                 # capacity
//   cpu = 16
//
// Only this subset of TOML is accepted: [[nodes]] tables of key = value lines
// with strings and numbers, blank lines and # comments. Every error names the
// file and line.

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
  int line = 0;  // of its [[nodes]] header
};

struct ClusterConfig {
  std::vector<NodeConfig> nodes;
  // The node that has bridge_bind (there is exactly one).
  const NodeConfig& bridge_node() const;
};

// `filename` is only used in messages.
absl::StatusOr<ClusterConfig> ParseNodesToml(absl::string_view text, absl::string_view filename);
absl::StatusOr<ClusterConfig> LoadNodesToml(const std::string& path);

// Splits "host:port" ("[v6]:port" for IPv6); an error names what is wrong.
absl::Status ValidateHostPort(absl::string_view address);

}  // namespace constellation::daemon
