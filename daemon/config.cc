#include "daemon/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
// TOML_EXCEPTIONS=0 (@constellation_system//:tomlplusplus): toml::parse
// returns a parse_result.
#include "daemon/tomlpp.h"

namespace constellation::daemon {
namespace {

constexpr absl::string_view kKeys = "fabric_addr, bridge_bind, mem, cpu";

// Debian's Abseil has its own string_view; toml++ speaks std::string_view.
absl::string_view View(std::string_view text) { return absl::string_view(text.data(), text.size()); }

int LineOf(const toml::source_region& source) { return static_cast<int>(source.begin.line); }

absl::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

// A table's entries in the order they appear in the file (toml::table is
// ordered by key), so the first error reported is the first in the file.
std::vector<std::pair<const toml::key*, const toml::node*>> InFileOrder(const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (auto&& [key, node] : table) entries.emplace_back(&key, &node);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const toml::source_position &x = a.first->source().begin, &y = b.first->source().begin;
    return x.line != y.line ? x.line < y.line : x.column < y.column;
  });
  return entries;
}

class Reader {
 public:
  explicit Reader(absl::string_view filename) : filename_(filename) {}

  absl::StatusOr<ClusterConfig> Read(const toml::table& root) const;

 private:
  absl::Status Error(int line, absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(filename_, ":", line, ": ", message));
  }
  absl::StatusOr<NodeConfig> ReadNode(const toml::table& table) const;
  absl::Status SetKey(const toml::key& key, const toml::node& value, NodeConfig& node) const;
  absl::Status SetMem(int line, const toml::node& value, NodeConfig& node) const;
  absl::Status SetCpu(int line, const toml::node& value, NodeConfig& node) const;
  absl::Status CheckCluster(const ClusterConfig& config) const;

  std::string filename_;
};

absl::StatusOr<ClusterConfig> Reader::Read(const toml::table& root) const {
  ClusterConfig config;
  for (const auto& [key, value] : InFileOrder(root)) {
    int line = LineOf(key->source());
    if (key->str() != "nodes") {
      if (value->is_table()) {
        return Error(line, absl::StrCat("unknown table [", View(key->str()), "] (only [[nodes]] tables are allowed)"));
      }
      return Error(line, absl::StrCat("key \"", View(key->str()), "\" outside a [[nodes]] table"));
    }
    const toml::array* nodes = value->as_array();
    if (nodes == nullptr) {
      return Error(line, absl::StrCat("nodes is ", TypeName(*value), ", not an array of tables ([[nodes]])"));
    }
    for (const toml::node& element : *nodes) {
      const toml::table* table = element.as_table();
      if (table == nullptr) {
        return Error(LineOf(element.source()),
                     absl::StrCat("a node is ", TypeName(element), ", not a table of ", kKeys));
      }
      absl::StatusOr<NodeConfig> node = ReadNode(*table);
      if (!node.ok()) return node.status();
      config.nodes.push_back(*std::move(node));
    }
  }
  absl::Status checked = CheckCluster(config);
  if (!checked.ok()) return checked;
  return config;
}

absl::StatusOr<NodeConfig> Reader::ReadNode(const toml::table& table) const {
  NodeConfig node;
  node.line = LineOf(table.source());
  for (const auto& [key, value] : InFileOrder(table)) {
    absl::Status status = SetKey(*key, *value, node);
    if (!status.ok()) return status;
  }
  for (std::string_view required : {"fabric_addr", "mem", "cpu"}) {
    if (!table.contains(required))
      return Error(node.line, absl::StrCat("this [[nodes]] table has no ", View(required)));
  }
  return node;
}

absl::Status Reader::SetKey(const toml::key& key, const toml::node& value, NodeConfig& node) const {
  int line = LineOf(key.source());
  absl::string_view name = View(key.str());
  if (name == "fabric_addr" || name == "bridge_bind") {
    const toml::value<std::string>* text = value.as_string();
    if (text == nullptr) {
      return Error(line, absl::StrCat(name, " must be a string \"host:port\", not ", TypeName(value)));
    }
    absl::Status valid = ValidateHostPort(text->get());
    if (!valid.ok()) return Error(line, absl::StrCat(name, ": ", valid.message()));
    (name == "fabric_addr" ? node.fabric_addr : node.bridge_bind.emplace()) = text->get();
    return absl::OkStatus();
  }
  if (name == "mem") return SetMem(line, value, node);
  if (name == "cpu") return SetCpu(line, value, node);
  return Error(line, absl::StrCat("unknown key \"", name, "\" (expected one of ", kKeys, ")"));
}

absl::Status Reader::SetMem(int line, const toml::node& value, NodeConfig& node) const {
  if (const toml::value<int64_t>* bytes = value.as_integer()) {
    if (bytes->get() <= 0) return Error(line, absl::StrCat("mem: ", bytes->get(), " bytes is not a size"));
    node.capacity.mem = static_cast<uint64_t>(bytes->get());
    return absl::OkStatus();
  }
  const toml::value<std::string>* text = value.as_string();
  if (text == nullptr) {
    return Error(line,
                 absl::StrCat("mem must be a size such as \"100 GiB\" or a number of bytes, not ", TypeName(value)));
  }
  absl::StatusOr<uint64_t> mem = parse_mem(text->get());
  if (!mem.ok()) return Error(line, absl::StrCat("mem: ", mem.status().message()));
  node.capacity.mem = *mem;
  return absl::OkStatus();
}

absl::Status Reader::SetCpu(int line, const toml::node& value, NodeConfig& node) const {
  std::optional<double> number = value.value_exact<double>();
  if (const toml::value<int64_t>* integer = value.as_integer()) number = static_cast<double>(integer->get());
  if (number.has_value()) {
    if (!std::isfinite(*number) || *number <= 0) {
      return Error(line, absl::StrCat("cpu: bad cpu count ", *number, ": must be a number of logical cores above 0"));
    }
    node.capacity.cpu = *number;
    return absl::OkStatus();
  }
  const toml::value<std::string>* text = value.as_string();
  if (text == nullptr)
    return Error(line, absl::StrCat("cpu must be a number such as 16 or 0.5, not ", TypeName(value)));
  absl::StatusOr<double> cpu = parse_cpu(text->get());
  if (!cpu.ok()) return Error(line, absl::StrCat("cpu: ", cpu.status().message()));
  node.capacity.cpu = *cpu;
  return absl::OkStatus();
}

absl::Status Reader::CheckCluster(const ClusterConfig& config) const {
  if (config.nodes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(filename_, ": no nodes: add a [[nodes]] table for each node"));
  }
  std::map<std::string, int> addresses;
  const NodeConfig* bridge = nullptr;
  for (const NodeConfig& node : config.nodes) {
    auto [it, inserted] = addresses.emplace(node.fabric_addr, node.line);
    if (!inserted) {
      return Error(node.line,
                   absl::StrCat("fabric_addr \"", node.fabric_addr, "\" is already the node on line ", it->second));
    }
    if (!node.bridge_bind) continue;
    if (bridge != nullptr) {
      return Error(node.line, absl::StrCat("a second bridge_bind (the node on line ", bridge->line,
                                           " has one); exactly one node has one (the master's)"));
    }
    bridge = &node;
  }
  if (bridge == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(filename_, ": 0 nodes have a bridge_bind; exactly one must (the master's)"));
  }
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
  if (text.size() > kMaxNodesTomlBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        filename, ": ", text.size(), " bytes is more than a nodes.toml may be (", kMaxNodesTomlBytes, ")"));
  }
  toml::parse_result parsed = toml::parse(std::string_view(text.data(), text.size()));
  if (!parsed) {
    const toml::parse_error& error = parsed.error();
    return absl::InvalidArgumentError(
        absl::StrCat(filename, ":", error.source().begin.line, ": ", View(error.description())));
  }
  return Reader(filename).Read(parsed.table());
}

absl::StatusOr<ClusterConfig> LoadNodesToml(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string text(kMaxNodesTomlBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return ParseNodesToml(text, path);
}

}  // namespace constellation::daemon
