#pragma once

// Registry: the metrics of one daemon process and their rendering in the
// Prometheus text format (text_format.h). Metrics are grouped in families by
// name; a family has one type, one help text and one set of label names, and
// a child per set of label values.
//
//   Registry registry;
//   Counter& spawned = registry.AddCounter("constellation_node_processes_spawned_total", "...");
//   spawned.Increment();                 // lock-free
//   std::string text = registry.Render();
//
// Values that are cheaper to read than to keep (how many processes run, nodes
// by state) are a collector: a function the scrape calls, registered for as
// long as the Registration it returns lives.
//
// Names follow Prometheus's conventions, checked when a metric is added: a
// counter's name ends in _total; a mistake (a bad name, a second metric with
// the same name and labels, a family added again with another type, help or
// label names) aborts with a message, as it is the program's, not the
// world's.
//
// Ownership: the registry owns the metrics it hands out (their references
// stay valid while it lives) and must outlive every Registration.
// Threading: thread-safe. Adding and rendering take one lock; the metrics
// themselves never do. Render calls the collectors under that lock, so a
// collector must not add to the registry or destroy a Registration.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "daemon/metrics/metric.h"
#include "daemon/metrics/text_format.h"

namespace constellation::daemon::metrics {

class Registry;

// Keeps a collector registered; destroying it removes the collector (after a
// scrape that is calling it has finished). Move-only.
class Registration {
 public:
  Registration() = default;
  Registration(Registry* registry, std::string name) : registry_(registry), name_(std::move(name)) {}
  ~Registration() { Reset(); }
  Registration(Registration&& other) noexcept;
  Registration& operator=(Registration&& other) noexcept;
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

  void Reset();

 private:
  Registry* registry_ = nullptr;
  std::string name_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& AddCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& AddGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                          const Labels& labels = {});

  // A gauge family whose samples `collect` returns at each scrape (called on
  // the scraping thread; it must be thread-safe and quick).
  struct Sample {
    Labels labels;
    double value = 0;
  };
  using Collect = std::function<std::vector<Sample>()>;
  [[nodiscard]] Registration AddGaugeCollector(const std::string& name, const std::string& help, Collect collect);

  // Every family, ordered by name; each child ordered by its label values.
  std::string Render() const;

 private:
  friend class Registration;
  enum class Type { kCounter, kGauge, kHistogram };
  struct Child {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<std::string> label_names;
    std::map<std::vector<std::string>, Child> children;  // by label values
    Collect collect;                                     // set: a collector, no children
  };

  // The child for `labels` in family `name` (made with the family if new).
  Child& AddChild(const std::string& name, const std::string& help, Type type, const Labels& labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(const std::string& name);
  static const char* TypeName(Type type);
  static void RenderFamily(const std::string& name, const Family& family, std::string& out);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace constellation::daemon::metrics
