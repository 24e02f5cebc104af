// Report::Plot: the latency figure of docs/performance.md, drawn by gnuplot
// (gnuplot-nox, installed by tools/bootstrap.sh).
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/compare/launch.h"
#include "bench/compare/report.h"

namespace compare {

absl::Status Report::Plot(const std::string& png, const std::string& dir) const {
  std::vector<std::string> pins;
  for (const std::string& pin : PinOrder()) {
    for (const Row& r : rows_) {
      if (r.test == "latency" && r.pinning == pin) {
        pins.push_back(pin);
        break;
      }
    }
  }
  if (pins.empty()) return absl::FailedPreconditionError("no latency figures to plot");
  std::string script = absl::StrFormat(
      "set terminal pngcairo size %d,520 font 'sans,10'\n"
      "set output '%s'\n"
      "set multiplot layout 1,%d title 'Round-trip latency (p50; bars: min to max over runs)'\n"
      "set logscale xy\nset xrange [5:110000]\nset yrange [0.1:2000]\nset grid\nset key below font 'sans,9'\n"
      "set xtics ('8 B' 8, '1 KiB' 1024, '64 KiB' 65536)\nset xlabel 'message size'\nset ylabel 'µs'\n",
      480 * pins.size() + 60, png, pins.size());
  // One style per system in every panel; the busy-polling ones dashed.
  const char* colours[] = {"black", "red", "blue", "dark-green", "orange", "purple"};
  for (size_t i = 0; i < Systems().size(); ++i) {
    absl::StrAppendFormat(&script, "set linetype %d lc rgb '%s' lw %d dt %d pt %d\n", i + 1, colours[i % 6],
                          Systems()[i].name == "ours" ? 3 : 2, Systems()[i].btl.empty() ? 1 : 2, i + 4);
  }
  for (size_t p = 0; p < pins.size(); ++p) {
    std::string plot;
    for (size_t i = 0; i < Systems().size(); ++i) {
      const System& s = Systems()[i];
      std::string data = absl::StrCat(dir, "/latency-", p, "-", s.name, ".dat");
      std::ofstream file(data);
      int points = 0;
      for (int64_t size : {8, 1024, 65536}) {
        for (const Row& r : rows_) {
          if (r.test != "latency" || r.pinning != pins[p] || r.system != &s || r.size != size) continue;
          bench::Summary p50 = r.Get("p50");
          file << size << " " << p50.median << " " << p50.min << " " << p50.max << "\n";
          ++points;
        }
      }
      if (points == 0) continue;
      absl::StrAppend(&plot, plot.empty() ? "plot " : ", ", "'", data, "' using 1:2:3:4 with yerrorlines lt ", i + 1,
                      " title '", s.label, "'");
    }
    absl::StrAppend(&script, "set title '", pins[p], "'\n", plot, "\n");
  }
  script += "unset multiplot\n";
  std::string script_path = dir + "/latency.gnuplot";
  std::ofstream(script_path) << script;
  absl::Status ran = Run({"gnuplot", script_path}, 60, dir + "/gnuplot.log");
  if (!ran.ok())
    return absl::InternalError(absl::StrCat("gnuplot: ", ran.message(), ": ", Tail(dir + "/gnuplot.log", 5)));
  return absl::OkStatus();
}

}  // namespace compare
