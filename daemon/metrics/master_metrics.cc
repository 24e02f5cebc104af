#include "daemon/metrics/master_metrics.h"

namespace constellation::daemon::metrics {

namespace {

// Room at once is microseconds; waiting for another job to end may take minutes.
std::vector<double> WaitBounds() { return {0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800}; }

Registry::Collect ByStateSamples(MasterMetrics::ByState by_state) {
  return [by_state = std::move(by_state)] {
    std::vector<Registry::Sample> samples;
    for (const auto& [state, count] : by_state()) samples.push_back({{{"state", state}}, static_cast<double>(count)});
    return samples;
  };
}

}  // namespace

MasterMetrics::MasterMetrics(Registry& registry)
    : registry_(registry),
      queue_length_(
          registry.AddGauge("constellation_master_placement_queue_length", "Spawns waiting for room on some node.")),
      placement_wait_(registry.AddHistogram("constellation_master_placement_wait_seconds",
                                            "How long a spawn that may wait (spawn(), a job's root) waited to be "
                                            "placed on a node.",
                                            WaitBounds())),
      nodes_lost_(registry.AddCounter("constellation_master_nodes_lost_total",
                                      "Times a node that was up was lost: its stream ended (keepalives missed, "
                                      "the node stopped or crashed).")),
      uploaded_bytes_(registry.AddCounter("constellation_master_uploaded_bytes_total",
                                          "Binary bytes clients uploaded to the master.")),
      cache_hits_(registry.AddCounter("constellation_master_binary_cache_hits_total",
                                      "Binaries clients asked for that the master had cached.")),
      cache_misses_(registry.AddCounter("constellation_master_binary_cache_misses_total",
                                        "Binaries clients asked for that the master had not cached.")),
      jobs_submitted_(registry.AddCounter("constellation_master_jobs_submitted_total",
                                          "Jobs accepted by Jobs.Submit (a repeated request_id counts once).")) {}

MasterMetrics& MasterMetrics::Unread() {
  static Registry* const registry = new Registry();
  static MasterMetrics* const metrics = new MasterMetrics(*registry);
  return *metrics;
}

Registration MasterMetrics::CollectNodes(ByState nodes) {
  return registry_.AddGaugeCollector("constellation_master_nodes", "The cluster's nodes, by state.",
                                     ByStateSamples(std::move(nodes)));
}

Registration MasterMetrics::CollectJobs(ByState jobs) {
  return registry_.AddGaugeCollector("constellation_master_jobs",
                                     "Jobs the master keeps (finished ones until their TTL), by state.",
                                     ByStateSamples(std::move(jobs)));
}

}  // namespace constellation::daemon::metrics
