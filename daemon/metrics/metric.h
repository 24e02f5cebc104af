#pragma once

// The three kinds of Prometheus metric a daemon keeps: Counter, Gauge and
// Histogram (fixed buckets). Each is a few atomics: updating one never takes
// a lock or allocates, so they may be bumped on any hot path from any
// thread. Reading (a scrape) may see a histogram mid-update; its _count is
// derived from its buckets, so the text it renders is always consistent.
//
// They are usually made and owned by a Registry (registry.h), which renders
// them; one made on its own counts for nobody (what tests without a registry
// use). Not copyable; their addresses are stable.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace constellation::daemon::metrics {

// A count that only goes up (restarts with the daemon). Thread-safe.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(uint64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Thread-safe.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(int64_t value) { value_.store(value, std::memory_order_relaxed); }
  void Add(int64_t delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Observations counted into buckets with fixed upper bounds (Prometheus's
// `le`, inclusive), plus their sum. Thread-safe.
class Histogram {
 public:
  // `bounds`: finite, strictly increasing (aborts otherwise: a programming
  // error); the +Inf bucket is implied.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  const std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

}  // namespace constellation::daemon::metrics
