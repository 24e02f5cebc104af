#include "daemon/config.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace constellation::daemon {
namespace {

constexpr absl::string_view kKeys = "fabric_addr, bridge_bind, mem, cpu";

class Parser {
 public:
  explicit Parser(absl::string_view filename) : filename_(filename) {}

  absl::StatusOr<ClusterConfig> Parse(absl::string_view text);

 private:
  absl::Status Error(int line, absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(filename_, ":", line, ": ", message));
  }
  absl::Status ParseLine(int line, absl::string_view content);
  absl::Status SetKey(int line, absl::string_view key, absl::string_view value);
  absl::Status FinishNode();
  // A TOML string ("...") or a bare number, with any trailing comment removed.
  absl::StatusOr<std::string> ParseValue(int line, absl::string_view raw, bool* quoted) const;

  std::string filename_;
  ClusterConfig config_;
  std::optional<NodeConfig> current_;
  std::map<std::string, int> seen_keys_;  // in the current node: key -> line
};

absl::StatusOr<ClusterConfig> Parser::Parse(absl::string_view text) {
  int line = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line;
    absl::Status status = ParseLine(line, absl::StripAsciiWhitespace(raw));
    if (!status.ok()) return status;
  }
  absl::Status status = FinishNode();
  if (!status.ok()) return status;
  if (config_.nodes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(filename_, ": no nodes: add a [[nodes]] table for each node"));
  }
  std::map<std::string, int> addresses;
  int bridges = 0;
  for (const NodeConfig& node : config_.nodes) {
    auto [it, inserted] = addresses.emplace(node.fabric_addr, node.line);
    if (!inserted) {
      return Error(node.line,
                   absl::StrCat("fabric_addr \"", node.fabric_addr, "\" is already the node on line ", it->second));
    }
    if (node.bridge_bind) ++bridges;
  }
  if (bridges != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(filename_, ": ", bridges, " nodes have a bridge_bind; exactly one must (the master's)"));
  }
  return config_;
}

absl::Status Parser::ParseLine(int line, absl::string_view content) {
  if (content.empty() || content[0] == '#') return absl::OkStatus();
  if (content[0] == '[') {
    absl::string_view header = content.substr(0, content.find('#'));
    header = absl::StripTrailingAsciiWhitespace(header);
    if (header != "[[nodes]]") {
      return Error(line, absl::StrCat("unknown table ", header, " (only [[nodes]] tables are allowed)"));
    }
    absl::Status status = FinishNode();
    if (!status.ok()) return status;
    current_.emplace();
    current_->line = line;
    seen_keys_.clear();
    return absl::OkStatus();
  }
  size_t eq = content.find('=');
  if (eq == absl::string_view::npos) return Error(line, "expected key = value");
  absl::string_view key = absl::StripAsciiWhitespace(content.substr(0, eq));
  if (!current_) return Error(line, absl::StrCat("key \"", key, "\" outside a [[nodes]] table"));
  return SetKey(line, key, absl::StripAsciiWhitespace(content.substr(eq + 1)));
}

absl::Status Parser::SetKey(int line, absl::string_view key, absl::string_view raw) {
  auto [it, inserted] = seen_keys_.emplace(std::string(key), line);
  if (!inserted) return Error(line, absl::StrCat("\"", key, "\" is already set on line ", it->second));
  bool quoted = false;
  absl::StatusOr<std::string> value = ParseValue(line, raw, &quoted);
  if (!value.ok()) return value.status();
  if (key == "fabric_addr" || key == "bridge_bind") {
    if (!quoted) return Error(line, absl::StrCat(key, " must be a quoted \"host:port\""));
    absl::Status valid = ValidateHostPort(*value);
    if (!valid.ok()) return Error(line, absl::StrCat(key, ": ", valid.message()));
    (key == "fabric_addr" ? current_->fabric_addr : current_->bridge_bind.emplace()) = *value;
  } else if (key == "mem") {
    absl::StatusOr<uint64_t> mem = parse_mem(*value);
    if (!mem.ok()) return Error(line, absl::StrCat("mem: ", mem.status().message()));
    current_->capacity.mem = *mem;
  } else if (key == "cpu") {
    absl::StatusOr<double> cpu = parse_cpu(*value);
    if (!cpu.ok()) return Error(line, absl::StrCat("cpu: ", cpu.status().message()));
    current_->capacity.cpu = *cpu;
  } else {
    return Error(line, absl::StrCat("unknown key \"", key, "\" (expected one of ", kKeys, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Parser::ParseValue(int line, absl::string_view raw, bool* quoted) const {
  *quoted = !raw.empty() && raw[0] == '"';
  if (!*quoted) {
    absl::string_view bare = absl::StripTrailingAsciiWhitespace(raw.substr(0, raw.find('#')));
    if (bare.empty()) return Error(line, "missing value");
    return std::string(bare);
  }
  std::string out;
  size_t i = 1;
  for (; i < raw.size() && raw[i] != '"'; ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
    out.push_back(raw[i]);
  }
  if (i >= raw.size()) return Error(line, "unterminated string");
  absl::string_view rest = absl::StripAsciiWhitespace(raw.substr(i + 1));
  if (!rest.empty() && rest[0] != '#') return Error(line, absl::StrCat("unexpected \"", rest, "\" after the value"));
  return out;
}

absl::Status Parser::FinishNode() {
  if (!current_) return absl::OkStatus();
  for (absl::string_view required : {"fabric_addr", "mem", "cpu"}) {
    if (!seen_keys_.contains(std::string(required))) {
      return Error(current_->line, absl::StrCat("this [[nodes]] table has no ", required));
    }
  }
  config_.nodes.push_back(*current_);
  current_.reset();
  return absl::OkStatus();
}

}  // namespace

const NodeConfig& ClusterConfig::bridge_node() const {
  for (const NodeConfig& node : nodes) {
    if (node.bridge_bind) return node;
  }
  return nodes.front();
}

absl::Status ValidateHostPort(absl::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\" is not host:port"));
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\" has a bad port"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ClusterConfig> ParseNodesToml(absl::string_view text, absl::string_view filename) {
  return Parser(filename).Parse(text);
}

absl::StatusOr<ClusterConfig> LoadNodesToml(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseNodesToml(text.str(), path);
}

}  // namespace constellation::daemon
