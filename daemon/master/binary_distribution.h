#pragma once

// BinaryDistribution: gets a job's binary onto the node that will run it.
// The master's cache holds what clients uploaded (content-addressed, checked
// again before it is sent); each node is sent a binary at most once at a
// time, and the master remembers which nodes have which until a node
// restarts (Forget).
//
// Thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "daemon/binary_cache.h"
#include "daemon/master/node_client.h"

namespace constellation::daemon::master {

class BinaryDistribution {
 public:
  explicit BinaryDistribution(BinaryCache* cache) : cache_(cache) {}  // `cache` must outlive this

  // The node has the binary once this returns OK.
  absl::Status EnsureOn(NodeClient& node, const pb::BinaryId& binary);
  // The node may have lost its cache (it restarted).
  void Forget(const std::string& addr);

 private:
  struct PerNode {
    std::set<std::string> present;
    std::shared_ptr<std::mutex> upload_mu = std::make_shared<std::mutex>();
  };

  BinaryCache* const cache_;
  std::mutex mu_;
  std::map<std::string, PerNode> nodes_;  // guarded by mu_
};

}  // namespace constellation::daemon::master
