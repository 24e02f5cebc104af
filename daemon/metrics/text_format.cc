#include "daemon/metrics/text_format.h"

#include <charconv>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace constellation::daemon::metrics {

namespace {

std::string Escape(absl::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

bool IsNameChar(char c, bool first, bool colon) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' || (colon && c == ':') ||
         (!first && absl::ascii_isdigit(static_cast<unsigned char>(c)));
}

bool IsName(absl::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, colon)) return false;
  }
  return true;
}

}  // namespace

std::string EscapeHelp(absl::string_view help) { return Escape(help, /*quotes=*/false); }

std::string EscapeLabelValue(absl::string_view value) { return Escape(value, /*quotes=*/true); }

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[400];  // fixed notation of values below 1e21
  // The shortest text that reads back the same value; plain decimals unless
  // the exponent is far out (as Go's 'g' and so Prometheus's own clients: 0.0005, 1e-05).
  double magnitude = std::fabs(value);
  bool exponent = magnitude != 0 && (magnitude < 1e-4 || magnitude >= 1e21);
  std::to_chars_result result = exponent ? std::to_chars(buf, buf + sizeof(buf), value)
                                         : std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed);
  return std::string(buf, result.ptr);
}

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += EscapeLabelValue(labels[i].second);
    out += '"';
  }
  out += '}';
  return out;
}

bool IsValidMetricName(absl::string_view name) { return IsName(name, /*colon=*/true); }

bool IsValidLabelName(absl::string_view name) { return IsName(name, /*colon=*/false) && !absl::StartsWith(name, "__"); }

}  // namespace constellation::daemon::metrics
