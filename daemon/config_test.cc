#include "daemon/config.h"

#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

constexpr char kSeeds[] = R"(
[[nodes]]
fabric_addr = "10.0.0.1:9999" # local address to bind to
bridge_bind = "10.0.0.1:8888" # local address of the bridge to bind to
mem = "100 GiB"               # resource capacity of the node
cpu = 16                      # number of logical cores

[[nodes]]
fabric_addr = "10.0.0.2:9999"
mem = "100 GiB"
cpu = 16

[[nodes]]
fabric_addr = "10.0.0.3:9999"
mem = "0.5 GiB"
cpu = 0.5
)";

void ExpectError(const std::string& text, const std::string& fragment) {
  auto config = ParseNodesToml(text, "nodes.toml");
  ASSERT_FALSE(config.ok()) << text;
  EXPECT_NE(config.status().message().find(fragment), std::string::npos)
      << config.status().message() << "\n  lacks: " << fragment;
}

TEST(NodesTomlTest, SeedsFormat) {
  auto config = ParseNodesToml(kSeeds, "nodes.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->nodes.size(), 3u);
  EXPECT_EQ(config->nodes[0].fabric_addr, "10.0.0.1:9999");
  EXPECT_EQ(*config->nodes[0].bridge_bind, "10.0.0.1:8888");
  EXPECT_EQ(config->nodes[0].capacity.mem, 100 * kGiB);
  EXPECT_EQ(config->nodes[0].capacity.cpu, 16);
  EXPECT_EQ(config->nodes[0].line, 2);
  EXPECT_FALSE(config->nodes[1].bridge_bind);
  EXPECT_EQ(config->nodes[2].capacity.mem, kGiB / 2);
  EXPECT_EQ(config->nodes[2].capacity.cpu, 0.5);
  EXPECT_EQ(config->bridge_node().fabric_addr, "10.0.0.1:9999");
}

TEST(NodesTomlTest, ErrorsNameTheLine) {
  ExpectError("[[nodes]]\nfabric_addr = \"a:1\"\nbridge_bind = \"a:2\"\nmem = \"5 GB\"\ncpu = 1\n",
              "nodes.toml:4: mem: bad memory size \"5 GB\"");
  ExpectError("[[nodes]]\nfabric_addr = \"a:1\"\nbridge_bind = \"a:2\"\ncpu = 1\n",
              "nodes.toml:1: this [[nodes]] table has no mem");
  ExpectError("[[nodes]]\nfabric_addr = \"a:1\"\nbridge_bind = \"a:2\"\nmem = \"1 GiB\"\ncpu = 1\nmemory = 3\n",
              "nodes.toml:6: unknown key \"memory\"");
  ExpectError(std::string(kSeeds) + "\n[[nodes]]\nfabric_addr = \"10.0.0.2:9999\"\nmem = \"1 GiB\"\ncpu = 1\n",
              "nodes.toml:18: fabric_addr \"10.0.0.2:9999\" is already the node on line 8");
  ExpectError("# nothing\n", "nodes.toml: no nodes");
  ExpectError("", "no nodes");
  ExpectError("[[nodes]]\nfabric_addr = \"a:1\"\nmem = \"1 GiB\"\ncpu = 1\n", "0 nodes have a bridge_bind");
  ExpectError("[[nodes]]\nfabric_addr = \"a:1\"\nfabric_addr = \"a:2\"\n",
              "nodes.toml:3: \"fabric_addr\" is already set");
  ExpectError("[[nodes]]\nfabric_addr = \"a\"\n", "nodes.toml:2: fabric_addr: \"a\" is not host:port");
  ExpectError("[[nodes]]\nfabric_addr = \"a:99999\"\n", "has a bad port");
  ExpectError("[[nodes]]\nfabric_addr = 10\n", "must be a quoted");
  ExpectError("[[nodes]]\ncpu = \"-1\"\n", "nodes.toml:2: cpu: bad cpu count");
  ExpectError("[[nodes]]\nfabric_addr = \"a:1\n", "nodes.toml:2: unterminated string");
  ExpectError("[node]\n", "nodes.toml:1: unknown table [node]");
  ExpectError("mem = \"1 GiB\"\n", "nodes.toml:1: key \"mem\" outside a [[nodes]] table");
  ExpectError("[[nodes]]\nmem\n", "nodes.toml:2: expected key = value");
}

TEST(NodesTomlTest, MissingFile) {
  auto config = LoadNodesToml("/nonexistent/nodes.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("/nonexistent/nodes.toml"), std::string::npos);
}

}  // namespace
}  // namespace constellation::daemon
