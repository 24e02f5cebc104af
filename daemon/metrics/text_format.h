#pragma once

// Pieces of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): escaping,
// numbers and label sets, and the checks on names. Pure functions.

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace constellation::daemon::metrics {

// The content type a scrape is answered with.
inline constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Label names and values, in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;

// `# HELP` text: backslash and newline escaped.
std::string EscapeHelp(absl::string_view help);
// A label value: backslash, double quote and newline escaped.
std::string EscapeLabelValue(absl::string_view value);
// A sample value or `le` bound: the shortest text that reads back the same
// double, in plain decimals between 1e-4 and 1e21 ("1", "0.0005", "2.5e-07",
// "1e+21"), "+Inf", "-Inf" or "NaN".
std::string FormatDouble(double value);
// `{a="x",b="y"}`, or "" for no labels.
std::string FormatLabels(const Labels& labels);

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. Label names: [a-zA-Z_][a-zA-Z0-9_]*,
// not starting with "__" (reserved).
bool IsValidMetricName(absl::string_view name);
bool IsValidLabelName(absl::string_view name);

}  // namespace constellation::daemon::metrics
