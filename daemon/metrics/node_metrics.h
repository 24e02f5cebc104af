#pragma once

// NodeMetrics: what a node daemon counts (docs/metrics.md lists them), made
// in a Registry. NodeService bumps them where things happen; the metrics
// themselves are lock-free.
//
// Ownership: the registry must outlive this. Threading: thread-safe.

#include <cstdint>
#include <functional>

#include "daemon/metrics/registry.h"
#include "proto/process.pb.h"

namespace constellation::daemon::metrics {

class NodeMetrics {
 public:
  explicit NodeMetrics(Registry& registry);
  NodeMetrics(const NodeMetrics&) = delete;
  NodeMetrics& operator=(const NodeMetrics&) = delete;

  // A process was launched: counted (also as forked when its deployment's
  // zygote forked it), and how long it took from the Launch call's arrival.
  void Spawned(double seconds, bool forked = false);
  // A process of this node ended: counted as failed by reason unless it exited 0.
  void Exited(const pb::ExitEvent& exit);
  // Binary bytes received from the master (Node.Upload).
  void Uploaded(uint64_t bytes) { uploaded_bytes_.Increment(bytes); }
  // The master asked whether a binary is cached (Node.HasBinary).
  void CacheLookup(bool hit) { (hit ? cache_hits_ : cache_misses_).Increment(); }

  // constellation_node_processes_running, read from `running` at each scrape.
  [[nodiscard]] Registration CollectRunning(std::function<int64_t()> running);
  // constellation_node_zygotes (deployments' zygotes running here), read from `zygotes` at each scrape.
  [[nodiscard]] Registration CollectZygotes(std::function<int64_t()> zygotes);

 private:
  Registry& registry_;
  Counter& spawned_;
  Counter& forked_;
  Counter& failed_exit_code_;
  Counter& failed_signal_;
  Counter& failed_oom_;
  Histogram& spawn_latency_;
  Counter& uploaded_bytes_;
  Counter& cache_hits_;
  Counter& cache_misses_;
};

}  // namespace constellation::daemon::metrics
