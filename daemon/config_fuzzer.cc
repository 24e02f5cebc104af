// libFuzzer target for the nodes.toml reader (daemon/config.h: toml++, built
// header-only so it is instrumented too, and our checks): the input is the
// file's text. Parsing must end in a config or an error, never a crash; a
// config that parses must satisfy what the master relies on (at least one node,
// unique valid fabric addresses, exactly one bridge, positive cpu), and written
// back as TOML it must parse to the same config.
// Run with tools/fuzz.sh config_fuzzer SECONDS; see docs/fuzzing.md.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/config.h"
#include "tools/fuzz/seeds.h"

namespace constellation::daemon {
namespace {

// A TOML basic string: quotes, backslashes and control characters escaped
// (what parsed came from valid TOML, so it is valid UTF-8).
std::string Quoted(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string ToToml(const ClusterConfig& config) {
  std::string out;
  for (const NodeConfig& node : config.nodes) {
    absl::StrAppend(&out, "[[nodes]]\nfabric_addr = ", Quoted(node.fabric_addr), "\n");
    if (node.bridge_bind) absl::StrAppend(&out, "bridge_bind = ", Quoted(*node.bridge_bind), "\n");
    absl::StrAppend(&out, "mem = \"", node.capacity.mem, " B\"\n");
    absl::StrAppendFormat(&out, "cpu = %.17g\n", node.capacity.cpu);
  }
  return out;
}

void CheckConfig(const ClusterConfig& config) {
  if (config.nodes.empty()) fuzz::Violated("a config with no nodes parsed");
  std::set<std::string> addresses;
  int bridges = 0;
  for (const NodeConfig& node : config.nodes) {
    if (!ValidateHostPort(node.fabric_addr).ok()) fuzz::Violated("an invalid fabric_addr parsed");
    if (!addresses.insert(node.fabric_addr).second) fuzz::Violated("a fabric_addr parsed twice");
    if (node.bridge_bind) {
      ++bridges;
      if (!ValidateHostPort(*node.bridge_bind).ok()) fuzz::Violated("an invalid bridge_bind parsed");
    }
    if (!(node.capacity.cpu > 0)) fuzz::Violated("a cpu that is not positive parsed");
  }
  if (bridges != 1) fuzz::Violated("a config without exactly one bridge parsed");
  if (!config.bridge_node().bridge_bind) fuzz::Violated("bridge_node() has no bridge_bind");
}

bool SameNodes(const ClusterConfig& a, const ClusterConfig& b) {
  if (a.nodes.size() != b.nodes.size()) return false;
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const NodeConfig &x = a.nodes[i], &y = b.nodes[i];
    if (x.fabric_addr != y.fabric_addr || x.bridge_bind != y.bridge_bind || x.capacity.mem != y.capacity.mem ||
        x.capacity.cpu != y.capacity.cpu) {
      return false;
    }
  }
  return true;
}

}  // namespace

}  // namespace constellation::daemon

namespace constellation::fuzz {

std::vector<Seed> Seeds() {
  using namespace constellation::daemon;
  return {
      {"seeds-format", R"([[nodes]]
fabric_addr = "10.0.0.1:9999"   # the node daemon's address
bridge_bind = "10.0.0.1:8888"
mem = "100 GiB"
cpu = 16

[[nodes]]
fabric_addr = "10.0.0.2:9999"
mem = "1.5GiB"
cpu = 0.5
)"},
      {"ipv6-escapes",
       "# comment\n[[nodes]] # one\nfabric_addr = \"[::1]:1\"\nbridge_bind = \"a\\\"b:2\"\n"
       "mem = \"512 MiB\"\ncpu = \"2\"\n"},
      {"toml-forms", R"(# inline tables, literal strings, integer bytes
nodes = [
  { fabric_addr = '10.0.0.1:9999', bridge_bind = '10.0.0.1:8888', mem = 1073741824, cpu = 2 },
  { "fabric_addr" = "h\u0031:1", mem = """512 MiB""", cpu = 5e-1 },
]
)"},
      {"errors", "[[nodes]]\nfabric_addr = \"x:1\"\nmem = 5 GB\ncpu = -1\n[[other]]\nkey\n"},
  };
}

}  // namespace constellation::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace constellation::daemon;
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ClusterConfig> config = ParseNodesToml(text, "fuzz.toml");
  if (!config.ok()) return 0;
  CheckConfig(*config);
  std::string written = ToToml(*config);
  absl::StatusOr<ClusterConfig> again = ParseNodesToml(written, "written.toml");
  if (!again.ok()) {
    constellation::fuzz::Violated(
        absl::StrCat("a parsed config, written back, does not parse: ", again.status().ToString(), "\n", written)
            .c_str());
  }
  if (!SameNodes(*config, *again)) constellation::fuzz::Violated("a parsed config, written back, parses differently");
  return 0;
}
