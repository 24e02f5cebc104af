#pragma once

// MasterMetrics: what the master counts (docs/metrics.md lists them), made
// in a Registry. The master's parts are given a pointer and bump them where
// things happen; the metrics themselves are lock-free.
//
// Ownership: the registry must outlive this. Threading: thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "daemon/metrics/registry.h"

namespace constellation::daemon::metrics {

class MasterMetrics {
 public:
  explicit MasterMetrics(Registry& registry);
  MasterMetrics(const MasterMetrics&) = delete;
  MasterMetrics& operator=(const MasterMetrics&) = delete;

  // Metrics in a registry of their own that nobody reads: for parts made
  // without metrics (their tests). Lives as long as the process.
  static MasterMetrics& Unread();

  // A spawn that waits for room joins the placement queue, and leaves it.
  void Enqueued() { queue_length_.Add(1); }
  void Dequeued() { queue_length_.Add(-1); }
  // A spawn that may wait was placed after `seconds` (0 for room at once).
  void Placed(double seconds) { placement_wait_.Observe(seconds); }
  // A node that was up is lost (its Attach stream ended: keepalives missed, or it went away).
  void NodeLost() { nodes_lost_.Increment(); }
  // Binary bytes received from clients (Jobs.UploadBinary).
  void Uploaded(uint64_t bytes) { uploaded_bytes_.Increment(bytes); }
  // A client asked whether a binary is cached (Jobs.HasBinary).
  void CacheLookup(bool hit) { (hit ? cache_hits_ : cache_misses_).Increment(); }
  void JobSubmitted() { jobs_submitted_.Increment(); }

  // How many nodes (jobs) are in each state, read at each scrape: state name -> count.
  using ByState = std::function<std::map<std::string, int64_t>()>;
  [[nodiscard]] Registration CollectNodes(ByState nodes);
  [[nodiscard]] Registration CollectJobs(ByState jobs);

 private:
  Registry& registry_;
  Gauge& queue_length_;
  Histogram& placement_wait_;
  Counter& nodes_lost_;
  Counter& uploaded_bytes_;
  Counter& cache_hits_;
  Counter& cache_misses_;
  Counter& jobs_submitted_;
};

}  // namespace constellation::daemon::metrics
