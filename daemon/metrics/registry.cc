#include "daemon/metrics/registry.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace constellation::daemon::metrics {

namespace {

[[noreturn]] void Misuse(const std::string& name, const std::string& what) {
  fprintf(stderr, "metrics: metric %s: %s\n", name.c_str(), what.c_str());
  abort();
}

std::vector<std::string> Names(const Labels& labels) {
  std::vector<std::string> names;
  for (const auto& [name, value] : labels) names.push_back(name);
  return names;
}

std::vector<std::string> Values(const Labels& labels) {
  std::vector<std::string> values;
  for (const auto& [name, value] : labels) values.push_back(value);
  return values;
}

Labels Zip(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  Labels labels;
  for (size_t i = 0; i < names.size(); ++i) labels.emplace_back(names[i], values[i]);
  return labels;
}

void AppendSample(std::string& out, const std::string& name, const Labels& labels, const std::string& value) {
  absl::StrAppend(&out, name, FormatLabels(labels), " ", value, "\n");
}

}  // namespace

Registration::Registration(Registration&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), name_(std::move(other.name_)) {}

Registration& Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = std::exchange(other.registry_, nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

void Registration::Reset() {
  if (registry_ != nullptr) registry_->Remove(name_);
  registry_ = nullptr;
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help, const Labels& labels) {
  if (!absl::EndsWith(name, "_total")) Misuse(name, "a counter's name ends in _total");
  std::lock_guard<std::mutex> lock(mu_);
  Child& child = AddChild(name, help, Type::kCounter, labels);
  child.counter = std::make_unique<Counter>();
  return *child.counter;
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Child& child = AddChild(name, help, Type::kGauge, labels);
  child.gauge = std::make_unique<Gauge>();
  return *child.gauge;
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                                  const Labels& labels) {
  for (const auto& [label, value] : labels) {
    if (label == "le") Misuse(name, "a histogram's label cannot be named le");
  }
  std::lock_guard<std::mutex> lock(mu_);
  Child& child = AddChild(name, help, Type::kHistogram, labels);
  child.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *child.histogram;
}

Registration Registry::AddGaugeCollector(const std::string& name, const std::string& help, Collect collect) {
  if (!IsValidMetricName(name)) Misuse(name, "not a valid metric name");
  std::lock_guard<std::mutex> lock(mu_);
  if (families_.contains(name)) Misuse(name, "added twice");
  families_[name] = Family{Type::kGauge, help, {}, {}, std::move(collect)};
  return Registration(this, name);
}

Registry::Child& Registry::AddChild(const std::string& name, const std::string& help, Type type, const Labels& labels) {
  if (!IsValidMetricName(name)) Misuse(name, "not a valid metric name");
  for (const auto& [label, value] : labels) {
    if (!IsValidLabelName(label)) Misuse(name, absl::StrCat("label \"", label, "\" is not a valid label name"));
  }
  auto [it, made] = families_.try_emplace(name, Family{type, help, Names(labels), {}, nullptr});
  Family& family = it->second;
  if (!made && (family.type != type || family.help != help || family.label_names != Names(labels) ||
                family.collect != nullptr)) {
    Misuse(name, "added again with another type, help or label names");
  }
  auto [child, new_child] = family.children.try_emplace(Values(labels));
  if (!new_child) Misuse(name, absl::StrCat("added twice with labels ", FormatLabels(labels)));
  return child->second;
}

void Registry::Remove(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  families_.erase(name);
}

const char* Registry::TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

std::string Registry::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, family] : families_) RenderFamily(name, family, out);
  return out;
}

void Registry::RenderFamily(const std::string& name, const Family& family, std::string& out) {
  absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(family.help), "\n");
  absl::StrAppend(&out, "# TYPE ", name, " ", TypeName(family.type), "\n");
  if (family.collect) {
    std::vector<Sample> samples = family.collect();
    for (const Sample& sample : samples) AppendSample(out, name, sample.labels, FormatDouble(sample.value));
    return;
  }
  for (const auto& [values, child] : family.children) {
    Labels labels = Zip(family.label_names, values);
    if (child.counter) AppendSample(out, name, labels, absl::StrCat(child.counter->value()));
    if (child.gauge) AppendSample(out, name, labels, absl::StrCat(child.gauge->value()));
    if (!child.histogram) continue;
    Histogram::Snapshot snapshot = child.histogram->Read();
    for (size_t i = 0; i <= snapshot.bounds.size(); ++i) {
      Labels with_le = labels;
      with_le.emplace_back("le", i < snapshot.bounds.size() ? FormatDouble(snapshot.bounds[i]) : "+Inf");
      AppendSample(out, name + "_bucket", with_le, absl::StrCat(snapshot.cumulative[i]));
    }
    AppendSample(out, name + "_sum", labels, FormatDouble(snapshot.sum));
    AppendSample(out, name + "_count", labels, absl::StrCat(snapshot.count));
  }
}

}  // namespace constellation::daemon::metrics
