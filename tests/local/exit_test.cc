// Exit codes and signals as the bridge reports them (issue 3, item 6), and the
// human output format's layout.
#include <signal.h>

#include <regex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(Exit, ZeroIsReportedAndBridgeExitsZero) {
  RunResult r = RunScenario({"exit0"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  ASSERT_THAT(r.trace.processes, SizeIs(1));
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out, "hello\n");
  EXPECT_EQ(root.ExitString(), "code 0");
  EXPECT_TRUE(root.out_eof);
  EXPECT_TRUE(root.err_eof);
  // The exit line is the last line of the program.
  ASSERT_FALSE(r.trace.events.empty());
  EXPECT_EQ(r.trace.events.back().type, Event::kExit);
}

TEST(Exit, OneIsReportedAndBridgeExitsOne) {
  RunResult r = RunScenario({"exit1"});
  EXPECT_EQ(r.exit.ToString(), "exit code 1");
  EXPECT_EQ(r.trace.Root().out, "failing\n");
  EXPECT_EQ(r.trace.Root().ExitString(), "code 1");
}

TEST(Exit, AbortIsReportedAsSigabrtAndBridgeExits134) {
  RunResult r = RunScenario({"abort"});
  EXPECT_EQ(r.exit.ToString(), "exit code 134");
  EXPECT_EQ(r.trace.Root().out, "aborting\n");
  EXPECT_EQ(r.trace.Root().ExitString(), "signal SIGABRT");
}

TEST(Exit, ReturnFromMainGivesItsCode) {
  for (int code : {0, 3, 42, 255}) {
    SCOPED_TRACE(code);
    RunResult r = RunScenario({"return", std::to_string(code)});
    EXPECT_EQ(r.exit.ToString(), "exit code " + std::to_string(code));
    EXPECT_EQ(r.trace.Root().out, "returning " + std::to_string(code) + "\n");
    EXPECT_EQ(r.trace.Root().ExitString(), "code " + std::to_string(code));
  }
}

TEST(Exit, ChildFailureDecidesTheBridgeCode) {
  RunResult r = RunScenario({"child_exit", "5"});
  EXPECT_EQ(r.exit.ToString(), "exit code 5");
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.ExitString(), "code 0");
  ASSERT_THAT(root.children, SizeIs(1));
  const ProcessRecord* child = r.trace.Find(root.children[0]);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->out, "exiting with 5\n");
  EXPECT_EQ(child->ExitString(), "code 5");
}

TEST(Exit, RootKilledWithSigkill) {
  RunResult r = RunScenario({"kill_root"});
  EXPECT_EQ(r.exit.ToString(), "exit code 137");
  EXPECT_EQ(r.trace.Root().out, "root about to die\n");
  EXPECT_EQ(r.trace.Root().ExitString(), "signal SIGKILL");
}

// ---- the human format ----------------------------------------------------------------

struct Block {
  std::string pid;
  std::vector<std::string> lines;  // without the indent
};

// Splits the human format into header blocks, checking its layout: a
// "<7 hex>:" header, then lines indented by three spaces.
std::vector<Block> ParseHuman(const std::string& text) {
  std::vector<Block> blocks;
  static const std::regex kHeader("^[0-9a-f]{7}:$");
  for (const std::string& line : Lines(text)) {
    if (std::regex_match(line, kHeader)) {
      blocks.push_back({line.substr(0, 7), {}});
      continue;
    }
    EXPECT_EQ(line.substr(0, 3), "   ") << "line not indented by three spaces: \"" << line << "\"\nin:\n" << text;
    EXPECT_NE(line.substr(3, 1), " ") << "line indented by more than three spaces: \"" << line << "\"";
    if (blocks.empty()) {
      ADD_FAILURE() << "output before any header:\n" << text;
      blocks.push_back({"", {}});
    }
    blocks.back().lines.push_back(line.size() >= 3 ? line.substr(3) : line);
  }
  return blocks;
}

TEST(HumanFormat, MatchesDesignLayout) {
  RunOptions options;
  options.args = {"human"};
  options.format = std::nullopt;  // unset: the default
  RunResult r = RunScenario(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 1");
  // Not a terminal: no colour codes.
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);

  std::vector<Block> blocks = ParseHuman(r.out);
  ASSERT_FALSE(blocks.empty()) << r.out;
  // A header only when the speaking process changes.
  for (size_t i = 1; i < blocks.size(); ++i) {
    EXPECT_NE(blocks[i].pid, blocks[i - 1].pid) << "two headers in a row for one pid:\n" << r.out;
  }
  // Each process's lines, in order, across its blocks. The two processes run
  // concurrently, so only each one's own order is fixed.
  std::string root = blocks[0].pid;
  std::map<std::string, std::vector<std::string>> by_pid;
  for (const Block& b : blocks) by_pid[b.pid].insert(by_pid[b.pid].end(), b.lines.begin(), b.lines.end());
  ASSERT_THAT(by_pid, SizeIs(2)) << r.out;
  ASSERT_THAT(by_pid[root], SizeIs(3)) << r.out;
  // The root printed its line before spawn(): its monitor forwards that
  // output before relaying the spawn event, so the line comes first, as in
  // DESIGN.md's example. Its exit comes last.
  int spawned_index = 1;
  EXPECT_EQ(by_pid[root][0], "hello from root") << r.out;
  ASSERT_EQ(by_pid[root][spawned_index].substr(0, 9), "spawned: ") << r.out;
  std::string child = by_pid[root][spawned_index].substr(9);
  EXPECT_THAT(child, ::testing::MatchesRegex("[0-9a-f]{7}"));
  EXPECT_NE(child, root);
  EXPECT_EQ(by_pid[root][2], "exited");
  EXPECT_THAT(by_pid[child], ElementsAre("exiting with 1", "exited: 1")) << r.out;
  // The child's header comes after the root's spawn line.
  size_t spawned_at = r.out.find("   spawned: " + child + "\n");
  size_t child_header_at = r.out.find(child + ":\n");
  EXPECT_LT(spawned_at, child_header_at) << r.out;

  // stderr stays stderr, under its own header.
  EXPECT_EQ(r.out.find("a line on stderr"), std::string::npos) << r.out;
  // (A header there is the root's: it is the speaker whichever stream it uses.)
  std::vector<std::string> err_lines;
  for (const std::string& line : Lines(r.err)) {
    if (line == root + ":") continue;
    err_lines.push_back(line);
  }
  EXPECT_THAT(err_lines, ElementsAre("   a line on stderr")) << r.err;
}

TEST(HumanFormat, ExplicitHumanValueIsTheDefault) {
  RunOptions options;
  options.args = {"exit1"};
  options.format = "human";
  RunResult r = RunScenario(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 1");
  std::vector<Block> blocks = ParseHuman(r.out);
  ASSERT_THAT(blocks, SizeIs(1)) << r.out;
  EXPECT_THAT(blocks[0].lines, ElementsAre("failing", "exited: 1"));
}

TEST(HumanFormat, SignalIsNamed) {
  RunOptions options;
  options.args = {"abort"};
  options.format = std::nullopt;
  RunResult r = RunScenario(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 134");
  std::vector<Block> blocks = ParseHuman(r.out);
  ASSERT_THAT(blocks, SizeIs(1)) << r.out;
  EXPECT_THAT(blocks[0].lines, ElementsAre("aborting", "exited: SIGABRT"));
}

TEST(Format, UnknownValueIsAClearErrorAndLeavesNoProcess) {
  RunOptions options;
  options.args = {"children", "2"};
  options.format = "xml";
  RunResult r = RunScenario(options);  // also checks that no process is left
  EXPECT_TRUE(r.exit.exited) << r.exit.ToString();
  EXPECT_NE(r.exit.code, 0);
  EXPECT_THAT(r.err, HasSubstr("CONSTELLATION_FORMAT"));
  EXPECT_THAT(r.err, HasSubstr("xml"));
  EXPECT_THAT(r.err, HasSubstr("json"));  // names the valid values
  EXPECT_THAT(r.out, IsEmpty());
}

}  // namespace
}  // namespace constellation::testing
