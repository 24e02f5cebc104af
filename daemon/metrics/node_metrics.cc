#include "daemon/metrics/node_metrics.h"

namespace constellation::daemon::metrics {

namespace {

constexpr char kFailed[] = "constellation_node_processes_failed_total";
constexpr char kFailedHelp[] =
    "Processes of this node that ended other than by exiting 0, by reason: exit_code (non-zero), signal, oom "
    "(killed for exceeding their memory limit).";

// Launch to running is a posix_spawn and a cgroup: milliseconds, unless the machine is overloaded.
std::vector<double> SpawnBounds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}

}  // namespace

NodeMetrics::NodeMetrics(Registry& registry)
    : registry_(registry),
      spawned_(registry.AddCounter("constellation_node_processes_spawned_total", "Processes this node has launched.")),
      forked_(registry.AddCounter("constellation_node_processes_forked_total",
                                  "Of the processes launched, those forked from their deployment's zygote (no exec).")),
      failed_exit_code_(registry.AddCounter(kFailed, kFailedHelp, {{"reason", "exit_code"}})),
      failed_signal_(registry.AddCounter(kFailed, kFailedHelp, {{"reason", "signal"}})),
      failed_oom_(registry.AddCounter(kFailed, kFailedHelp, {{"reason", "oom"}})),
      spawn_latency_(registry.AddHistogram("constellation_node_spawn_latency_seconds",
                                           "From a Launch request's arrival to its process running.", SpawnBounds())),
      uploaded_bytes_(registry.AddCounter("constellation_node_uploaded_bytes_total",
                                          "Binary bytes the master uploaded to this node.")),
      cache_hits_(registry.AddCounter("constellation_node_binary_cache_hits_total",
                                      "Binaries the master asked for that this node had cached.")),
      cache_misses_(registry.AddCounter("constellation_node_binary_cache_misses_total",
                                        "Binaries the master asked for that this node had not cached.")) {}

void NodeMetrics::Spawned(double seconds, bool forked) {
  spawned_.Increment();
  if (forked) forked_.Increment();
  spawn_latency_.Observe(seconds);
}

void NodeMetrics::Exited(const pb::ExitEvent& exit) {
  if (exit.memory_exceeded()) {
    failed_oom_.Increment();
  } else if (exit.has_signal()) {
    failed_signal_.Increment();
  } else if (exit.code() != 0) {
    failed_exit_code_.Increment();
  }
}

Registration NodeMetrics::CollectRunning(std::function<int64_t()> running) {
  return registry_.AddGaugeCollector("constellation_node_processes_running",
                                     "Processes this node has launched that have not ended.",
                                     [running = std::move(running)]() -> std::vector<Registry::Sample> {
                                       return {{{}, static_cast<double>(running())}};
                                     });
}

Registration NodeMetrics::CollectZygotes(std::function<int64_t()> zygotes) {
  return registry_.AddGaugeCollector("constellation_node_zygotes",
                                     "Deployments' zygotes this node keeps (docs/process-model.md, \"On a node\").",
                                     [zygotes = std::move(zygotes)]() -> std::vector<Registry::Sample> {
                                       return {{{}, static_cast<double>(zygotes())}};
                                     });
}

}  // namespace constellation::daemon::metrics
