#include "bench/compare/report.h"

#include <algorithm>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace compare {
namespace {

// A flat JSON object of numbers, as the measurement programs write it.
absl::StatusOr<std::map<std::string, double>> ParseFlat(absl::string_view json) {
  std::map<std::string, double> fields;
  json = absl::StripAsciiWhitespace(json);
  if (!absl::ConsumePrefix(&json, "{") || !absl::ConsumeSuffix(&json, "}")) {
    return absl::InvalidArgumentError("not a JSON object: " + std::string(json));
  }
  for (absl::string_view pair : absl::StrSplit(json, ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(pair, absl::MaxSplits(':', 1));
    absl::string_view key = absl::StripAsciiWhitespace(kv.first);
    double value = 0;
    if (!absl::ConsumePrefix(&key, "\"") || !absl::ConsumeSuffix(&key, "\"") ||
        !absl::SimpleAtod(absl::StripAsciiWhitespace(kv.second), &value)) {
      return absl::InvalidArgumentError("bad field: " + std::string(pair));
    }
    fields[std::string(key)] = value;
  }
  return fields;
}

// "median (min–max)", or the median alone after a single run.
std::string Cell(const bench::Summary& s, int precision) {
  if (s.min == s.max) return absl::StrFormat("%.*f", precision, s.median);
  return absl::StrFormat("%.*f (%.*f–%.*f)", precision, s.median, precision, s.min, precision, s.max);
}

std::string Ratio(double ours, double raw) { return raw > 0 ? absl::StrFormat("%.2f×", ours / raw) : "–"; }

const char* Met(bool met) { return met ? "met" : "**not met**"; }

// How each system starts a process in the start-up rows.
std::string StartHow(const std::string& system) {
  if (system == "raw") return "posix_spawn, connect, write 8 B";
  if (system == "ours") return "spawn(), Sender::send";
  if (system == "zmq") return "posix_spawn, DEALER connect + send";
  if (system == "grpc") return "posix_spawn, channel + stream + Write";
  return "MPI_Comm_spawn (1 process), MPI_Send";
}

}  // namespace

const std::vector<std::string>& PinOrder() {
  static const std::vector<std::string> order = {"same core", "two cores", "unpinned"};
  return order;
}

std::string SizeName(int64_t bytes) {
  if (bytes >= (1 << 20) && bytes % (1 << 20) == 0) return absl::StrCat(bytes >> 20, " MiB");
  if (bytes >= 1024 && bytes % 1024 == 0) return absl::StrCat(bytes >> 10, " KiB");
  return absl::StrCat(bytes, " B");
}

bench::Summary Row::Get(const std::string& figure) const {
  auto it = figures.find(figure);
  return it == figures.end() ? bench::Summary{} : bench::Summarize(it->second);
}

absl::Status Report::Add(const Measurement& m, const std::string& json) {
  absl::StatusOr<std::map<std::string, double>> fields = ParseFlat(json);
  if (!fields.ok()) return fields.status();
  if (m.test == "throughput" || m.test == "rate") {
    double seconds = (*fields)["seconds"];
    if (seconds <= 0) return absl::InvalidArgumentError("no seconds in " + json);
    (*fields)["gbs"] = (*fields)["bytes"] / seconds / 1e9;
    (*fields)["mps"] = (*fields)["n"] / seconds;
  }
  Row* row = const_cast<Row*>(Find(m.system->name, m.test, m.pinning, m.size));
  if (row == nullptr) {
    rows_.push_back(Row{m.system, m.test, m.pinning, m.size, {}});
    row = &rows_.back();
  }
  for (const auto& [name, value] : *fields) row->figures[name].push_back(value);
  return absl::OkStatus();
}

const Row* Report::Find(const std::string& system, const std::string& test, const std::string& pinning,
                        int64_t size) const {
  for (const Row& r : rows_) {
    if (r.system->name == system && r.test == test && r.pinning == pinning && r.size == size) return &r;
  }
  return nullptr;
}

std::vector<const Row*> Report::Select(const std::string& test) const {
  std::vector<const Row*> rows;
  std::vector<int64_t> sizes;
  for (const Row& r : rows_) {
    if (r.test == test && std::find(sizes.begin(), sizes.end(), r.size) == sizes.end()) sizes.push_back(r.size);
  }
  std::sort(sizes.begin(), sizes.end());
  for (int64_t size : sizes) {
    for (const std::string& pin : PinOrder()) {
      for (const System& s : Systems()) {
        if (const Row* r = Find(s.name, test, pin, size)) rows.push_back(r);
      }
    }
  }
  return rows;
}

std::string Report::Brief(const Measurement& m) const {
  const Row* r = Find(m.system->name, m.test, m.pinning, m.size);
  if (r == nullptr) return "";
  auto last = [&](const std::string& f) { return r->Has(f) ? r->figures.at(f).back() : 0.0; };
  if (m.test == "latency") return absl::StrFormat("p50 %.1f us, p99 %.1f us", last("p50"), last("p99"));
  if (m.test == "throughput") return absl::StrFormat("%.2f GB/s", last("gbs"));
  if (m.test == "rate") return absl::StrFormat("%.3f M msgs/s", last("mps") / 1e6);
  if (m.test == "start") return absl::StrFormat("p50 %.2f ms", last("p50") / 1e3);
  if (m.test == "all_to_all" || m.test.rfind("fan_in", 0) == 0) {
    return absl::StrFormat("%.3f M msgs/s", last("msgs_per_s") / 1e6);
  }
  return absl::StrFormat("user %.0f KiB + monitor %.0f KiB RSS", last("user_rss_kib"), last("monitor_rss_kib"));
}

void Report::PrintLatency(FILE* out) const {
  int64_t size = -1;
  for (const Row* r : Select("latency")) {
    if (r->size != size) {
      size = r->size;
      std::fprintf(out, "\n### Round-trip latency, %s messages (µs)\n\n", SizeName(size).c_str());
      std::fprintf(out, "| pinning | system | p50 | p99 | p99.9 | p50 ÷ raw | how it waits |\n");
      std::fprintf(out, "|---|---|---|---|---|---|---|\n");
    }
    const Row* raw = Find("raw", "latency", r->pinning, r->size);
    std::string note = r->system->note;
    if (!r->system->btl.empty() && r->pinning == "same core") note += "; sched_yield() between polls (plan.cc)";
    std::fprintf(out, "| %s | %s | %s | %s | %s | %s | %s |\n", r->pinning.c_str(), r->system->label.c_str(),
                 Cell(r->Get("p50"), 1).c_str(), Cell(r->Get("p99"), 1).c_str(), Cell(r->Get("p999"), 1).c_str(),
                 raw ? Ratio(r->Get("p50").median, raw->Get("p50").median).c_str() : "–", note.c_str());
  }
}

void Report::PrintStreams(FILE* out) const {
  std::fprintf(out, "\n### One-way throughput (1 MiB messages) and message rate (8 B messages)\n\n");
  std::fprintf(out, "| pinning | system | 1 MiB: GB/s | ÷ raw | 8 B: M msgs/s | ÷ raw |\n");
  std::fprintf(out, "|---|---|---|---|---|---|\n");
  for (const std::string& pin : PinOrder()) {
    for (const System& s : Systems()) {
      const Row* t = Find(s.name, "throughput", pin, 1 << 20);
      const Row* m = Find(s.name, "rate", pin, 8);
      if (t == nullptr && m == nullptr) continue;
      const Row* raw_t = Find("raw", "throughput", pin, 1 << 20);
      const Row* raw_m = Find("raw", "rate", pin, 8);
      bench::Summary rate = m ? m->Get("mps") : bench::Summary{};
      bench::Summary rate_m{rate.median / 1e6, rate.min / 1e6, rate.max / 1e6};
      std::fprintf(out, "| %s | %s | %s | %s | %s | %s |\n", pin.c_str(), s.label.c_str(),
                   t ? Cell(t->Get("gbs"), 2).c_str() : "–",
                   t && raw_t ? Ratio(t->Get("gbs").median, raw_t->Get("gbs").median).c_str() : "–",
                   m ? Cell(rate_m, 3).c_str() : "–",
                   m && raw_m ? Ratio(rate.median, raw_m->Get("mps").median).c_str() : "–");
    }
  }
}

void Report::PrintStart(FILE* out) const {
  std::vector<const Row*> rows = Select("start");
  if (rows.empty()) return;
  std::fprintf(out, "\n### Start a process and get its first message back (ms, unpinned)\n\n");
  std::fprintf(out, "| system | how | p50 | p99 | p50 ÷ raw |\n|---|---|---|---|---|\n");
  const Row* raw = Find("raw", "start", "unpinned", 8);
  for (const Row* r : rows) {
    auto ms = [](bench::Summary s) { return bench::Summary{s.median / 1e3, s.min / 1e3, s.max / 1e3}; };
    std::fprintf(out, "| %s | %s | %s | %s | %s |\n", r->system->label.c_str(), StartHow(r->system->name).c_str(),
                 Cell(ms(r->Get("p50")), 2).c_str(), Cell(ms(r->Get("p99")), 2).c_str(),
                 raw ? Ratio(r->Get("p50").median, raw->Get("p50").median).c_str() : "–");
  }
}

void Report::PrintScale(FILE* out) const {
  std::vector<const Row*> all = Select("all_to_all");
  if (!all.empty()) {
    std::fprintf(out, "\n### Ours at scale: N processes all-to-all, 8 B values (unpinned)\n\n");
    std::fprintf(out, "| N | messages per run | total M msgs/s |\n|---|---|---|\n");
    for (const Row* r : all) {
      bench::Summary s = r->Get("msgs_per_s");
      std::fprintf(out, "| %lld | %.0f | %s |\n", static_cast<long long>(r->size), r->Get("messages").median,
                   Cell(bench::Summary{s.median / 1e6, s.min / 1e6, s.max / 1e6}, 3).c_str());
    }
  }
  for (const Row* r : Select("memory")) {
    std::fprintf(out, "\n### Ours: memory (KiB), %lld idle processes\n\n", static_cast<long long>(r->size));
    std::fprintf(out,
                 "| user process RSS | its monitor's RSS | both, RSS | both, PSS | per connection, hub | per "
                 "connection, other end |\n|---|---|---|---|---|---|\n");
    bench::Summary user = r->Get("user_rss_kib"), monitor = r->Get("monitor_rss_kib");
    std::fprintf(out, "| %s | %s | %.0f | %s | %s | %s |\n", Cell(user, 0).c_str(), Cell(monitor, 0).c_str(),
                 user.median + monitor.median, Cell(r->Get("pss_kib"), 0).c_str(),
                 Cell(r->Get("hub_kib_per_conn"), 1).c_str(), Cell(r->Get("other_end_kib"), 1).c_str());
  }
}

void Report::PrintConnections(FILE* out) const {
  for (const Row* r : Select("connections")) {
    std::fprintf(out,
                 "\n### Ours: memory per idle connection (KiB; heap in use and anonymous RSS), one process with %lld "
                 "connections and the %lld processes at their other ends\n\n",
                 static_cast<long long>(r->size), static_cast<long long>(r->size));
    std::fprintf(out, "| end | heap, busy | RSS, busy | heap, idle | RSS, idle |\n|---|---|---|---|---|\n");
    for (const char* end : {"hub", "other"}) {
      auto cell = [&](const char* figure) { return Cell(r->Get(absl::StrCat(end, "_", figure, "_kib")), 1); };
      std::fprintf(
          out, "| %s | %s | %s | %s | %s |\n",
          std::string(end) == "hub" ? "the hub, per connection" : "the other end (its process's second connection)",
          cell("busy_heap").c_str(), cell("busy_rss").c_str(), cell("idle_heap").c_str(), cell("idle_rss").c_str());
    }
  }
}

namespace {

// How the receiving process of a fan-in row receives.
std::string FanInHow(const Row& r) {
  if (r.test == "fan_in_select") return "one thread: a loop of co_await select_async over the senders left";
  if (r.system->name == "ours") return "64 threads, each a loop of blocking recv()";
  return "one thread: when_all of 64 coroutines, each a loop of co_await async_recv()";
}

}  // namespace

void Report::PrintFanIn(FILE* out) const {
  std::vector<const Row*> rows = Select("fan_in");
  for (const Row* r : Select("fan_in_select")) rows.push_back(r);
  if (rows.empty()) return;
  std::fprintf(out, "\n### Fan-in: %lld sender processes into one receiving process, 8 B values (unpinned)\n\n",
               static_cast<long long>(rows[0]->size));
  std::fprintf(out,
               "| system | the receiver | messages per run | M msgs/s | ÷ blocking threads |\n|---|---|---|---|---|\n");
  const Row* blocking = Find("ours", "fan_in", "unpinned", rows[0]->size);
  for (const Row* r : rows) {
    bench::Summary s = r->Get("msgs_per_s");
    std::fprintf(out, "| %s | %s | %.0f | %s | %s |\n", r->system->label.c_str(), FanInHow(*r).c_str(),
                 r->Get("messages").median, Cell(bench::Summary{s.median / 1e6, s.min / 1e6, s.max / 1e6}, 3).c_str(),
                 blocking ? Ratio(s.median, blocking->Get("msgs_per_s").median).c_str() : "–");
  }
}

void Report::PrintAsyncTargets(FILE* out) const {
  for (const Row* r : Select("latency")) {
    if (r->system->flags.empty()) continue;
    if (r->system->name == "ours-busy-poll") {
      // Issue 15: with busy-polling, at or below Open MPI over TCP (which busy-polls too).
      const Row* mpi = Find("mpi-tcp", "latency", r->pinning, r->size);
      if (mpi == nullptr) continue;
      double p50 = r->Get("p50").median, theirs = mpi->Get("p50").median;
      std::fprintf(out, "- busy-poll latency %s, %s: p50 %.1f µs; Open MPI TCP %.1f µs (target: at or below) %s\n",
                   SizeName(r->size).c_str(), r->pinning.c_str(), p50, theirs, Met(p50 <= theirs));
      continue;
    }
    const Row* ours = Find("ours", "latency", r->pinning, r->size);
    if (ours == nullptr) continue;
    double p50 = r->Get("p50").median, ratio = p50 / ours->Get("p50").median;
    std::fprintf(out, "- async latency %s, %s: %s p50 %.1f µs; %.2f× blocking (%.1f µs) (target ≤ 1.10×) %s\n",
                 SizeName(r->size).c_str(), r->pinning.c_str(), r->system->name.c_str(), p50, ratio,
                 ours->Get("p50").median, Met(ratio <= 1.10));
  }
}

// Issue 9's targets for small values (ahead of ZeroMQ and gRPC, within 1.5× raw TCP) and
// issue 15's for the rest: 64 KiB ≤ 1.2× raw, 1 MiB ≥ 90% of raw, the 8 B rate ≥ 0.8× ZeroMQ's,
// start-up p50 ≤ raw's with p99 ≤ 3× p50, and the memory bounds.
void Report::PrintLatencyTargets(FILE* out) const {
  for (const Row* r : Select("latency")) {
    if (r->system->name != "ours") continue;
    const Row* raw = Find("raw", "latency", r->pinning, r->size);
    const Row* zmq = Find("zmq", "latency", r->pinning, r->size);
    const Row* grpc = Find("grpc", "latency", r->pinning, r->size);
    const double p50 = r->Get("p50").median;
    const double bound = r->size >= (64 << 10) ? 1.2 : 1.5;
    std::string line = absl::StrFormat("- latency %s, %s: ours p50 %.1f µs", SizeName(r->size), r->pinning, p50);
    if (raw) {
      double ratio = p50 / raw->Get("p50").median;
      absl::StrAppendFormat(&line, "; %.2f× raw (target ≤ %.1f×) %s", ratio, bound, Met(ratio <= bound));
    }
    if (zmq)
      absl::StrAppendFormat(&line, "; ahead of ZeroMQ (%.1f) %s", zmq->Get("p50").median,
                            Met(p50 < zmq->Get("p50").median));
    if (grpc)
      absl::StrAppendFormat(&line, "; ahead of gRPC (%.1f) %s", grpc->Get("p50").median,
                            Met(p50 < grpc->Get("p50").median));
    std::fprintf(out, "%s\n", line.c_str());
  }
}

void Report::PrintStreamTargets(FILE* out) const {
  for (const std::string& pin : PinOrder()) {
    const Row* ours = Find("ours", "throughput", pin, 1 << 20);
    const Row* raw = Find("raw", "throughput", pin, 1 << 20);
    if (ours == nullptr || raw == nullptr) continue;
    double ratio = ours->Get("gbs").median / raw->Get("gbs").median;
    std::fprintf(out, "- throughput 1 MiB, %s: ours %.0f%% of raw (target ≥ 90%%) %s\n", pin.c_str(), ratio * 100,
                 Met(ratio >= 0.9));
  }
  for (const std::string& pin : PinOrder()) {
    const Row* ours = Find("ours", "rate", pin, 8);
    const Row* zmq = Find("zmq", "rate", pin, 8);
    if (ours == nullptr || zmq == nullptr) continue;
    double ratio = ours->Get("mps").median / zmq->Get("mps").median;
    std::fprintf(out, "- rate 8 B, %s: ours %.2f M msgs/s, %.2f× ZeroMQ's %.2f (target ≥ 0.8×) %s\n", pin.c_str(),
                 ours->Get("mps").median / 1e6, ratio, zmq->Get("mps").median / 1e6, Met(ratio >= 0.8));
  }
}

void Report::PrintTargets(FILE* out) const {
  std::fprintf(out, "\n### Targets (from the medians)\n\n");
  PrintAsyncTargets(out);
  PrintLatencyTargets(out);
  PrintStreamTargets(out);
  if (const Row* ours = Find("ours", "start", "unpinned", 8)) {
    double p50 = ours->Get("p50").median / 1e3, p99 = ours->Get("p99").median / 1e3;
    std::string line = absl::StrFormat("- start-up: ours p50 %.2f ms, p99 %.2f ms (%.1f× p50; target ≤ 3×) %s", p50,
                                       p99, p99 / p50, Met(p99 <= 3 * p50));
    if (const Row* raw = Find("raw", "start", "unpinned", 8)) {
      double theirs = raw->Get("p50").median / 1e3;
      absl::StrAppendFormat(&line, "; %.2f× raw's %.2f ms (target ≤ 1.0×) %s", p50 / theirs, theirs,
                            Met(p50 <= theirs));
    }
    if (const Row* mpi = Find("mpi-shm", "start", "unpinned", 8)) {
      double theirs = mpi->Get("p50").median / 1e3;
      absl::StrAppendFormat(&line, "; ahead of MPI_Comm_spawn (%.2f ms) %s", theirs, Met(p50 < theirs));
    }
    std::fprintf(out, "%s\n", line.c_str());
  }
  for (const Row* r : Select("all_to_all")) {
    if (r->size != 64) continue;
    double rate = r->Get("msgs_per_s").median / 1e6;
    std::fprintf(out, "- all-to-all of 64: %.2f M msgs/s (target ≥ 5.2, twice the 2.6 measured before) %s\n", rate,
                 Met(rate >= 5.2));
  }
  for (const Row* r : Select("memory")) {
    double pss = r->Get("pss_kib").median;
    std::fprintf(out, "- an idle process and its monitor: %.0f KiB PSS (target ≤ 1024) %s\n", pss, Met(pss <= 1024));
  }
  for (const Row* r : Select("connections")) {
    double hub = r->Get("hub_idle_rss_kib").median, other = r->Get("other_idle_rss_kib").median;
    std::fprintf(out, "- an idle connection: %.1f KiB RSS at the hub, %.1f KiB at the other end (target ≤ 16) %s\n",
                 hub, other, Met(std::max(hub, other) <= 16));
  }
}

void Report::PrintTables(FILE* out) const {
  PrintLatency(out);
  PrintStreams(out);
  PrintStart(out);
  PrintScale(out);
  PrintConnections(out);
  PrintFanIn(out);
  PrintTargets(out);
}

void Report::PrintJson(FILE* out) const {
  std::vector<const Row*> rows;
  for (const char* test :
       {"latency", "throughput", "rate", "start", "all_to_all", "memory", "connections", "fan_in", "fan_in_select"}) {
    for (const Row* r : Select(test)) rows.push_back(r);
  }
  for (const Row* r : rows) {
    std::string line = absl::StrFormat(
        "{\"system\":\"%s\",\"label\":\"%s\",\"test\":\"%s\",\"pinning\":\"%s\",\"size\":%d,\"busy_poll\":%s",
        r->system->name, r->system->label, r->test, r->pinning, r->size,
        r->system->name.rfind("mpi", 0) == 0 || r->system->name == "ours-busy-poll" ? "true" : "false");
    auto add = [&](const std::string& name, const bench::Summary& s) {
      absl::StrAppendFormat(&line, ",\"%s\":%g,\"%s_min\":%g,\"%s_max\":%g", name, s.median, name, s.min, name, s.max);
    };
    size_t runs = r->figures.empty() ? 0 : r->figures.begin()->second.size();
    absl::StrAppendFormat(&line, ",\"runs\":%d", runs);
    bool percentiles = r->test == "latency" || r->test == "start";
    if (percentiles) {
      add("p50", r->Get("p50"));
      add("p99", r->Get("p99"));
      add("p999", r->Get("p999"));
      line += ",\"unit\":\"us\"";
    } else {
      line += ",\"p50\":null,\"p99\":null";
    }
    std::string figure = r->test == "throughput" ? "gbs" : r->test == "rate" ? "mps" : "msgs_per_s";
    if (r->Has(figure)) {
      add("throughput", r->Get(figure));
      absl::StrAppendFormat(&line, ",\"throughput_unit\":\"%s\"", r->test == "throughput" ? "GB/s" : "msgs/s");
    } else {
      line += ",\"throughput\":null";
    }
    if (r->test == "memory" || r->test == "connections") {
      for (const auto& [name, values] : r->figures) add(name, bench::Summarize(values));
    }
    std::fprintf(out, "%s}\n", line.c_str());
  }
}

}  // namespace compare
