#include "daemon/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "gtest/gtest.h"

namespace constellation::daemon {
namespace {

class FlagsTest : public ::testing::Test {
 private:
  absl::FlagSaver saver_;  // every test starts from the defaults
};

TEST_F(FlagsTest, BothSpellingsAndPositionals) {
  absl::StatusOr<CommandLine> line =
      ParseCommandLine({"127.0.0.1:0", "--cache-dir", "/c", "nodes.toml", "--peer-timeout=30s", "--insecure",
                        "--max-binary-size", "1 MiB", "--log_format=json"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->action, CommandLine::Action::kRun);
  EXPECT_EQ(line->positional, (std::vector<std::string>{"127.0.0.1:0", "nodes.toml"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_cache_dir), "/c");
  EXPECT_EQ(absl::GetFlag(FLAGS_peer_timeout).value, absl::Seconds(30));
  EXPECT_TRUE(absl::GetFlag(FLAGS_insecure));
  EXPECT_EQ(absl::GetFlag(FLAGS_max_binary_size).bytes, 1u << 20);
  EXPECT_EQ(absl::GetFlag(FLAGS_log_format), LogFormat::kJson);
}

TEST_F(FlagsTest, Defaults) {
  ASSERT_TRUE(ParseCommandLine({"127.0.0.1:0"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_master_grace).value, absl::Seconds(60));
  EXPECT_EQ(absl::GetFlag(FLAGS_peer_timeout).value, absl::Seconds(10));
  EXPECT_EQ(absl::GetFlag(FLAGS_event_buffer).bytes, 64u << 20);
  EXPECT_EQ(absl::GetFlag(FLAGS_state_dir).path, "");
  EXPECT_FALSE(absl::GetFlag(FLAGS_insecure));
  EXPECT_EQ(absl::GetFlag(FLAGS_log_format), LogFormat::kText);
}

TEST_F(FlagsTest, HelpAndVersionWinAndDoubleDashEndsOptions) {
  EXPECT_EQ(ParseCommandLine({"x", "--help", "--frobnicate"})->action, CommandLine::Action::kHelp);
  EXPECT_EQ(ParseCommandLine({"-h"})->action, CommandLine::Action::kHelp);
  EXPECT_EQ(ParseCommandLine({"--version"})->action, CommandLine::Action::kVersion);
  absl::StatusOr<CommandLine> line = ParseCommandLine({"a", "--", "--insecure"});
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(line->positional, (std::vector<std::string>{"a", "--insecure"}));
  EXPECT_FALSE(absl::GetFlag(FLAGS_insecure));
}

TEST_F(FlagsTest, ErrorsNameTheFlag) {
  auto error = [](std::vector<std::string> args) { return std::string(ParseCommandLine(args).status().message()); };
  EXPECT_EQ(error({"--frobnicate"}), "unknown option --frobnicate");
  EXPECT_EQ(error({"--frobnicate=1"}), "unknown option --frobnicate=1");
  EXPECT_EQ(error({"-x"}), "unknown option -x");
  // Abseil's own flags are not the daemon's.
  EXPECT_EQ(error({"--flagfile=/etc/passwd"}), "unknown option --flagfile=/etc/passwd");
  EXPECT_EQ(error({"--tls"}), "--tls needs a value");
  EXPECT_EQ(error({"--peer-timeout", "ten"}),
            "--peer-timeout: expected a duration from 1s to 1h such as \"10s\", got \"ten\"");
  EXPECT_EQ(error({"--peer-timeout=2h"}),
            "--peer-timeout: expected a duration from 1s to 1h such as \"10s\", got \"2h\"");
  EXPECT_EQ(error({"--master-grace=-1s"}),
            "--master-grace: expected a duration such as \"60s\", \"500ms\", \"2m\" or 0, got \"-1s\"");
  EXPECT_EQ(error({"--master-grace=inf"}),
            "--master-grace: expected a duration such as \"60s\", \"500ms\", \"2m\" or 0, got \"inf\"");
  EXPECT_EQ(error({"--state-dir="}), "--state-dir: needs a directory");
  EXPECT_EQ(error({"--log-format=xml"}), "--log-format: expected \"text\" or \"json\", got \"xml\"");
  EXPECT_NE(error({"--max-binary-size=5 GB"}).find("--max-binary-size: "), std::string::npos);
  EXPECT_NE(error({"--insecure=maybe"}).find("--insecure: "), std::string::npos);
}

}  // namespace
}  // namespace constellation::daemon
