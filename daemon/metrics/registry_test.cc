#include "daemon/metrics/registry.h"

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace constellation::daemon::metrics {
namespace {

TEST(TextFormatTest, Escapes) {
  EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");
  EXPECT_EQ(EscapeLabelValue("a\\b\nc\"d"), "a\\\\b\\nc\\\"d");
  EXPECT_EQ(FormatLabels({}), "");
  EXPECT_EQ(FormatLabels({{"a", "x\"y"}, {"b", ""}}), "{a=\"x\\\"y\",b=\"\"}");
}

TEST(TextFormatTest, Numbers) {
  EXPECT_EQ(FormatDouble(0), "0");
  EXPECT_EQ(FormatDouble(1), "1");
  EXPECT_EQ(FormatDouble(0.005), "0.005");
  EXPECT_EQ(FormatDouble(0.0005), "0.0005");
  EXPECT_EQ(FormatDouble(0.00001), "1e-05");
  EXPECT_EQ(FormatDouble(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(FormatDouble(123456789), "123456789");
  EXPECT_EQ(FormatDouble(1e21), "1e+21");
  EXPECT_EQ(FormatDouble(2.5), "2.5");
  EXPECT_EQ(FormatDouble(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatDouble(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatDouble(std::nan("")), "NaN");
}

TEST(TextFormatTest, Names) {
  EXPECT_TRUE(IsValidMetricName("constellation_node:x_total"));
  EXPECT_FALSE(IsValidMetricName("9lives"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("state"));
  EXPECT_FALSE(IsValidLabelName("__name"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(RegistryTest, RendersEveryKindExactly) {
  Registry registry;
  Counter& spawned = registry.AddCounter("x_spawned_total", "Spawned.\nSecond line \\ here.");
  Counter& by_code = registry.AddCounter("x_failed_total", "Failed.", {{"reason", "exit_code"}});
  Counter& by_signal = registry.AddCounter("x_failed_total", "Failed.", {{"reason", "signal"}});
  Gauge& queue = registry.AddGauge("x_queue_length", "Queued.");
  Histogram& latency = registry.AddHistogram("x_latency_seconds", "Latency.", {0.005, 0.1, 1});
  Registration nodes = registry.AddGaugeCollector("x_nodes", "Nodes.", [] {
    return std::vector<Registry::Sample>{{{{"state", "up"}}, 2}, {{{"state", "a\"b"}}, 0.5}};
  });
  spawned.Increment(3);
  by_code.Increment();
  by_signal.Increment(2);
  queue.Add(5);
  queue.Add(-2);
  latency.Observe(0.001);
  latency.Observe(0.1);  // le is inclusive
  latency.Observe(7);
  EXPECT_EQ(registry.Render(),
            "# HELP x_failed_total Failed.\n"
            "# TYPE x_failed_total counter\n"
            "x_failed_total{reason=\"exit_code\"} 1\n"
            "x_failed_total{reason=\"signal\"} 2\n"
            "# HELP x_latency_seconds Latency.\n"
            "# TYPE x_latency_seconds histogram\n"
            "x_latency_seconds_bucket{le=\"0.005\"} 1\n"
            "x_latency_seconds_bucket{le=\"0.1\"} 2\n"
            "x_latency_seconds_bucket{le=\"1\"} 2\n"
            "x_latency_seconds_bucket{le=\"+Inf\"} 3\n"
            "x_latency_seconds_sum 7.101\n"
            "x_latency_seconds_count 3\n"
            "# HELP x_nodes Nodes.\n"
            "# TYPE x_nodes gauge\n"
            "x_nodes{state=\"up\"} 2\n"
            "x_nodes{state=\"a\\\"b\"} 0.5\n"
            "# HELP x_queue_length Queued.\n"
            "# TYPE x_queue_length gauge\n"
            "x_queue_length 3\n"
            "# HELP x_spawned_total Spawned.\\nSecond line \\\\ here.\n"
            "# TYPE x_spawned_total counter\n"
            "x_spawned_total 3\n");
}

TEST(RegistryTest, HistogramWithLabelsPutsLeLast) {
  Registry registry;
  registry.AddHistogram("h_seconds", "H.", {1}, {{"kind", "a"}}).Observe(2);
  EXPECT_EQ(registry.Render(),
            "# HELP h_seconds H.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{kind=\"a\",le=\"1\"} 0\n"
            "h_seconds_bucket{kind=\"a\",le=\"+Inf\"} 1\n"
            "h_seconds_sum{kind=\"a\"} 2\n"
            "h_seconds_count{kind=\"a\"} 1\n");
}

TEST(RegistryTest, RegistrationRemovesTheCollector) {
  Registry registry;
  {
    Registration running = registry.AddGaugeCollector("r", "R.", [] { return std::vector<Registry::Sample>{{{}, 4}}; });
    EXPECT_EQ(registry.Render(), "# HELP r R.\n# TYPE r gauge\nr 4\n");
    Registration moved = std::move(running);
    EXPECT_EQ(registry.Render(), "# HELP r R.\n# TYPE r gauge\nr 4\n");
  }
  EXPECT_EQ(registry.Render(), "");
  // The name is free again.
  Registration again = registry.AddGaugeCollector("r", "R.", [] { return std::vector<Registry::Sample>{}; });
  EXPECT_EQ(registry.Render(), "# HELP r R.\n# TYPE r gauge\n");
}

TEST(RegistryTest, CountsFromManyThreads) {
  Registry registry;
  Counter& counter = registry.AddCounter("c_total", "C.");
  Histogram& histogram = registry.AddHistogram("h", "H.", {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.Increment();
        histogram.Observe(i % 2);
      }
    });
  }
  std::string during = registry.Render();  // concurrent with the updates: must not crash or tear
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counter.value(), 40000u);
  Histogram::Snapshot snapshot = histogram.Read();
  EXPECT_EQ(snapshot.count, 40000u);
  EXPECT_EQ(snapshot.cumulative[0], 20000u);
  EXPECT_EQ(snapshot.sum, 20000);
}

TEST(RegistryDeathTest, MisuseAborts) {
  Registry registry;
  registry.AddCounter("a_total", "A.");
  EXPECT_DEATH(registry.AddCounter("a_total", "A."), "added twice");
  EXPECT_DEATH(registry.AddCounter("b", "B."), "ends in _total");
  EXPECT_DEATH(registry.AddGauge("a_total", "A."), "another type");
  EXPECT_DEATH(registry.AddGauge("bad-name", "B."), "not a valid metric name");
  EXPECT_DEATH(registry.AddGauge("g", "G.", {{"__x", "1"}}), "not a valid label name");
  EXPECT_DEATH(registry.AddHistogram("h", "H.", {1}, {{"le", "1"}}), "cannot be named le");
  EXPECT_DEATH(registry.AddHistogram("h", "H.", {2, 1}), "strictly increasing");
}

}  // namespace
}  // namespace constellation::daemon::metrics
