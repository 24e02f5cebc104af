#pragma once

// //bench:compare's results: every run's figures by row, and what the driver
// prints from them: markdown tables (the body of docs/performance.md), one
// JSON object per row (--json), and the latency plot (--plot, gnuplot).

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/bench_support.h"
#include "bench/compare/plan.h"

namespace compare {

// One row: a system under one test, pinning and size; each figure has one
// value per run.
struct Row {
  const System* system = nullptr;
  std::string test, pinning;
  int64_t size = 0;
  std::map<std::string, std::vector<double>> figures;

  bench::Summary Get(const std::string& figure) const;
  bool Has(const std::string& figure) const { return figures.contains(figure); }
};

class Report {
 public:
  // Adds one run: the JSON object the measurement's program wrote. Derives
  // gbs (throughput) and mps (message rate) from its n, bytes and seconds.
  absl::Status Add(const Measurement& m, const std::string& json);

  // The headline figure of the row `m` belongs to, from its last run (progress lines).
  std::string Brief(const Measurement& m) const;

  void PrintTables(FILE* out) const;
  void PrintJson(FILE* out) const;

  // Latency (p50, error bars min..max over runs) by message size, one line per
  // system, one panel per pinning; PNG at `png`, its data and script in `dir`.
  absl::Status Plot(const std::string& png, const std::string& dir) const;

 private:
  const Row* Find(const std::string& system, const std::string& test, const std::string& pinning, int64_t size) const;
  // Rows of a test in table order: by pinning or size as given, then system.
  std::vector<const Row*> Select(const std::string& test) const;

  void PrintLatency(FILE* out) const;
  void PrintStreams(FILE* out) const;
  void PrintStart(FILE* out) const;
  void PrintScale(FILE* out) const;
  void PrintConnections(FILE* out) const;
  void PrintFanIn(FILE* out) const;
  void PrintAsyncTargets(FILE* out) const;    // async 8 B latency ÷ blocking
  void PrintLatencyTargets(FILE* out) const;  // each size ÷ raw, against ZeroMQ and gRPC
  void PrintStreamTargets(FILE* out) const;   // 1 MiB ÷ raw, the 8 B rate ÷ ZeroMQ
  void PrintTargets(FILE* out) const;

  std::vector<Row> rows_;
};

// Pinnings and latency sizes in table order.
const std::vector<std::string>& PinOrder();
std::string SizeName(int64_t bytes);

}  // namespace compare
