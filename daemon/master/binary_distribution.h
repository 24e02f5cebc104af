#pragma once

// BinaryDistribution: gets a job's binary onto the node that will run it.
// The master's cache holds what clients uploaded (content-addressed, checked
// again before it is sent); each node is sent a binary at most once at a
// time, and the master remembers which nodes have which until a node
// restarts (Forget).
//
// How a node gets it:
//  - a binary still arriving at the master (IncomingBinaries) is streamed to
//    the node as it arrives: the node receives it while the client still
//    sends it, not in a second upload after the first;
//  - a node on the master's own machine (its HasBinaryReply.boot_id is the
//    master's) is offered the master's stored copy (Node.Adopt, a hard link
//    the node checks and hashes): one copy on disk, written and synced once
//    per machine. If it refuses (another filesystem, another uid), it is sent
//    the bytes;
//  - otherwise the stored file is sent.
// Prefetch starts this in the background, as soon as an upload begins, for
// the node that will first need the binary.
//
// Thread-safe.

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "daemon/binary_cache.h"
#include "daemon/master/incoming_binaries.h"
#include "daemon/master/node_client.h"

namespace constellation::daemon::master {

class BinaryDistribution {
 public:
  // `cache` and `incoming` (null: no streaming) must outlive this. `boot_id`
  // is this machine's (BootId()); empty: no node is on the master's machine.
  BinaryDistribution(BinaryCache* cache, IncomingBinaries* incoming = nullptr, std::string boot_id = BootId())
      : cache_(cache), incoming_(incoming), boot_id_(std::move(boot_id)) {}
  ~BinaryDistribution();  // waits for the prefetches

  // The node has the binary once this returns OK.
  absl::Status EnsureOn(NodeClient& node, const pb::BinaryId& binary);
  // EnsureOn on a thread of its own; its outcome is only remembered. `node`
  // must outlive this.
  void Prefetch(NodeClient& node, const pb::BinaryId& binary);
  // The node may have lost its cache (it restarted).
  void Forget(const std::string& addr);

 private:
  struct PerNode {
    std::set<std::string> present;
    std::shared_ptr<std::mutex> upload_mu = std::make_shared<std::mutex>();
  };
  struct Prefetching {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  // Gets the binary onto the node (it holds the node's upload_mu).
  absl::Status Send(NodeClient& node, const pb::BinaryId& binary);

  BinaryCache* const cache_;
  IncomingBinaries* const incoming_;
  const std::string boot_id_;
  std::mutex mu_;
  std::map<std::string, PerNode> nodes_;                 // guarded by mu_
  std::list<std::unique_ptr<Prefetching>> prefetching_;  // guarded by mu_
};

}  // namespace constellation::daemon::master
