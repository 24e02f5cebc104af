#include "cli/args.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace constellation::cli {

using internal::OutputFormat;

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

absl::StatusOr<Args> Parse(std::vector<std::string> argv, ArgsEnv env = {}) { return ParseArgs(argv, env); }

std::string Error(std::vector<std::string> argv, ArgsEnv env = {}) {
  absl::StatusOr<Args> args = ParseArgs(argv, env);
  EXPECT_FALSE(args.ok()) << "parsed";
  EXPECT_TRUE(args.ok() || absl::IsInvalidArgument(args.status())) << args.status();
  return args.ok() ? "" : std::string(args.status().message());
}

TEST(ParseArgs, AttachedRunAsToday) {
  absl::StatusOr<Args> a = Parse({"10.0.0.1:8888", "./prog", "--format=json", "--env=FOO", "--", "x", "--y"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->verb, Verb::kRun);
  EXPECT_EQ(a->addr, "10.0.0.1:8888");
  EXPECT_EQ(a->binary, "./prog");
  EXPECT_EQ(a->output, OutputFormat::kJson);
  EXPECT_THAT(a->env.names, ElementsAre("FOO"));
  EXPECT_THAT(a->program_args, ElementsAre("x", "--y"));
  EXPECT_EQ(a->reconnect_timeout, absl::Seconds(60));
  EXPECT_FALSE(a->detach);
}

TEST(ParseArgs, OptionsMayComeFirstAndLabelsAreBuiltinWords) {
  absl::StatusOr<Args> a = Parse({"--insecure", "host:1", "//examples:hello", "--reconnect-timeout=5m"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->tls.insecure);
  EXPECT_EQ(a->binary, "//examples:hello");
  EXPECT_EQ(a->reconnect_timeout, absl::Minutes(5));
}

TEST(ParseArgs, AddressFromTheEnvironment) {
  absl::StatusOr<Args> a = Parse({"./prog"}, {.master = "m:9"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->addr, "m:9");
  EXPECT_EQ(a->binary, "./prog");
  // The command line wins.
  a = Parse({"other:1", "./prog"}, {.master = "m:9"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->addr, "other:1");
  EXPECT_THAT(Error({"./prog"}), HasSubstr("CONSTELLATION_MASTER"));
  EXPECT_THAT(Error({"list"}), HasSubstr("CONSTELLATION_MASTER"));
  EXPECT_THAT(Error({"./prog"}, {.master = "nocolon"}), HasSubstr("not a master address"));
}

TEST(ParseArgs, AMistypedCommandIsNotTakenForAnAddress) {
  EXPECT_THAT(Error({"lsit", "host:1"}), HasSubstr("neither a command"));
  EXPECT_THAT(Error({"host:1", "a", "b"}), HasSubstr("after --"));
}

TEST(ParseArgs, Submit) {
  absl::StatusOr<Args> a =
      Parse({"submit", "h:1", "--detach", "--label=team=ml", "--label=run=7", "--ttl=2h", "./p", "--", "arg"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->verb, Verb::kSubmit);
  EXPECT_TRUE(a->detach);
  EXPECT_THAT(a->labels, ElementsAre(Pair("run", "7"), Pair("team", "ml")));
  EXPECT_EQ(a->ttl, absl::Hours(2));
  EXPECT_EQ(a->binary, "./p");
  EXPECT_THAT(a->program_args, ElementsAre("arg"));
  EXPECT_THAT(Error({"submit", "h:1", "--label=novalue", "./p"}), HasSubstr("KEY=VALUE"));
  EXPECT_THAT(Error({"submit", "h:1", "--label==v", "./p"}), HasSubstr("KEY=VALUE"));
  EXPECT_THAT(Error({"submit", "h:1", "--label=a=1", "--label=a=2", "./p"}), HasSubstr("twice"));
  EXPECT_THAT(Error({"submit", "h:1", "--ttl=soon", "./p"}), HasSubstr("--ttl wants a duration"));
  EXPECT_THAT(Error({"submit", "h:1", "--ttl=-5s", "./p"}), HasSubstr("--ttl wants a duration"));
  EXPECT_THAT(Error({"submit", "h:1", "--ttl=inf", "./p"}), HasSubstr("--ttl wants a duration"));
  EXPECT_THAT(Error({"submit", "h:1"}), HasSubstr("takes [ADDR] BINARY or //label: BINARY or //label is missing"));
  EXPECT_THAT(Error({"submit"}), HasSubstr("takes [ADDR] BINARY or //label, got 0"));
  EXPECT_THAT(Error({"submit", "h:1", "//bad;label"}), HasSubstr("is not a Bazel label"));
}

TEST(ParseArgs, List) {
  absl::StatusOr<Args> a = Parse({"list", "h:1", "--state=running", "--state=FAILED", "--label=a=b", "--format=json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->verb, Verb::kList);
  EXPECT_THAT(a->states, ElementsAre(v1::JOB_STATE_RUNNING, v1::JOB_STATE_FAILED));
  EXPECT_THAT(a->labels, ElementsAre(Pair("a", "b")));
  EXPECT_EQ(a->listing, ListingFormat::kJson);
  a = Parse({"list"}, {.master = "m:1"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->listing, ListingFormat::kAuto);
  EXPECT_THAT(Error({"list", "h:1", "--state=sleeping"}), HasSubstr("--state wants"));
  EXPECT_THAT(Error({"list", "h:1", "--state=unspecified"}), HasSubstr("--state wants"));
  EXPECT_THAT(Error({"list", "h:1", "17"}), HasSubstr("takes [ADDR], got 2"));
  EXPECT_THAT(Error({"list", "h:1", "--format=xml"}), HasSubstr("json or table"));
}

TEST(ParseArgs, ListingFormatFollowsTheEnvironment) {
  absl::StatusOr<Args> a = Parse({"nodes", "h:1"}, {.format = "json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->listing, ListingFormat::kJson);
  a = Parse({"nodes", "h:1", "--format=table"}, {.format = "json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->listing, ListingFormat::kTable);
  a = Parse({"status", "h:1", "3"}, {.format = "human"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->listing, ListingFormat::kAuto);
}

TEST(ParseArgs, JobCommands) {
  for (auto [word, verb] : {std::pair{"status", Verb::kStatus}, std::pair{"logs", Verb::kLogs},
                            std::pair{"cancel", Verb::kCancel}, std::pair{"delete", Verb::kDelete}}) {
    absl::StatusOr<Args> a = Parse({word, "h:1", "42"});
    ASSERT_TRUE(a.ok()) << word << ": " << a.status();
    EXPECT_EQ(a->verb, verb);
    EXPECT_EQ(a->addr, "h:1");
    EXPECT_EQ(a->job, "42");
    a = Parse({word, "42"}, {.master = "m:2"});
    ASSERT_TRUE(a.ok()) << word << ": " << a.status();
    EXPECT_EQ(a->addr, "m:2");
    EXPECT_THAT(Error({word, "h:1"}), HasSubstr("JOB is missing")) << word;
    EXPECT_THAT(Error({word, "h:1"}, {.master = "m:2"}), HasSubstr("is not a job id")) << word;
    EXPECT_THAT(Error({word, "h:1", "4x"}), HasSubstr("is not a job id")) << word;
    EXPECT_THAT(Error({word, "h:1", "1", "2"}), HasSubstr("takes [ADDR] JOB, got 3")) << word;
    EXPECT_THAT(Error({word, "h:1", "1", "--", "x"}), HasSubstr("takes no program arguments")) << word;
  }
  EXPECT_THAT(Error({"status", "h:1", "99999999999999999999999"}), HasSubstr("is not a job id"));
}

TEST(ParseArgs, Logs) {
  absl::StatusOr<Args> a = Parse({"logs", "-f", "--from=17", "h:1", "5", "--format=json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->follow);
  EXPECT_EQ(a->from_seq, 17u);
  EXPECT_EQ(a->output, OutputFormat::kJson);
  a = Parse({"logs", "--follow", "h:1", "5"}, {.format = "json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->follow);
  EXPECT_EQ(a->output, OutputFormat::kJson);
  EXPECT_THAT(Error({"logs", "--from=-1", "h:1", "5"}), HasSubstr("--from wants"));
  // --from takes the next argument as its value.
  EXPECT_THAT(Error({"logs", "--from", "h:1", "5"}), HasSubstr("--from wants an event sequence number, not \"h:1\""));
  EXPECT_THAT(Error({"logs", "h:1", "5", "--from"}), HasSubstr("--from needs a value"));
  EXPECT_THAT(Error({"logs", "-f=1", "h:1", "5"}), HasSubstr("takes no value"));
}

TEST(ParseArgs, Cancel) {
  absl::StatusOr<Args> a = Parse({"cancel", "h:1", "5"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->grace, absl::Seconds(10));
  a = Parse({"cancel", "h:1", "5", "--grace=0"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->grace, absl::ZeroDuration());
  a = Parse({"cancel", "h:1", "5", "--grace=1m30s"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->grace, absl::Seconds(90));
}

TEST(ParseArgs, Nodes) {
  absl::StatusOr<Args> a = Parse({"nodes", "h:1", "--tls=/b"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->verb, Verb::kNodes);
  EXPECT_EQ(a->tls.bundle_dir, "/b");
  EXPECT_EQ(a->listing, ListingFormat::kAuto);
}

TEST(ParseArgs, OptionsOfOtherCommandsAreRefusedByName) {
  EXPECT_THAT(Error({"list", "h:1", "--detach"}), HasSubstr("--detach is not an option of cdeploy list"));
  EXPECT_THAT(Error({"h:1", "./p", "--detach"}), HasSubstr("--detach is not an option of cdeploy run"));
  EXPECT_THAT(Error({"status", "h:1", "1", "-f"}), HasSubstr("-f is not an option of cdeploy status"));
  EXPECT_THAT(Error({"delete", "h:1", "1", "--grace=1s"}), HasSubstr("--grace is not an option of cdeploy delete"));
  EXPECT_THAT(Error({"nodes", "h:1", "--env=X"}), HasSubstr("--env is not an option"));
  EXPECT_THAT(Error({"h:1", "./p", "--frobnicate"}), HasSubstr("unknown option --frobnicate"));
}

TEST(ParseArgs, CommonErrors) {
  EXPECT_THAT(Error({}), HasSubstr("nothing to do"));
  EXPECT_THAT(Error({"h:1", "./p", "--format=xml"}), HasSubstr("xml"));
  EXPECT_THAT(Error({"h:1", "./p"}, {.format = "xml"}), HasSubstr("xml"));
  // A valid --format overrides a bad variable, as before.
  EXPECT_TRUE(Parse({"h:1", "./p", "--format=human"}, {.format = "xml"}).ok());
  EXPECT_THAT(Error({"h:1", "./p", "--tls=/x", "--insecure"}), HasSubstr("exclude each other"));
  EXPECT_THAT(Error({"h:1", "./p", "--env=1BAD"}), HasSubstr("not a variable name"));
  EXPECT_THAT(Error({"h:1", "./p", "--reconnect-timeout=x"}), HasSubstr("--reconnect-timeout wants a duration"));
  EXPECT_THAT(Error({":1", "./p"}), HasSubstr("not a master address"));
}

TEST(ParseArgs, Help) {
  for (std::vector<std::string> argv : std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"help"}, {"h:1", "./p", "--help"}, {"list", "--help"}, {"logs", "--bogus", "--help"}}) {
    absl::StatusOr<Args> a = Parse(argv);
    // An unknown option before --help is still an error: it is read first.
    if (argv.size() == 3 && argv[1] == "--bogus") {
      EXPECT_FALSE(a.ok());
      continue;
    }
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->verb, Verb::kHelp);
  }
  EXPECT_THAT(kUsage, HasSubstr("usage: cdeploy"));
}

TEST(ParseArgs, ValuesAfterASpace) {
  absl::StatusOr<Args> a = Parse({"list", "h:1", "--format", "json", "--state", "running", "--label", "a=b"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->listing, ListingFormat::kJson);
  EXPECT_THAT(a->states, ElementsAre(v1::JOB_STATE_RUNNING));
  EXPECT_THAT(a->labels, ElementsAre(Pair("a", "b")));
  a = Parse({"--tls", "/b", "h:1", "./p", "--env", "FOO", "--reconnect-timeout", "5m", "--", "--format", "x"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->tls.bundle_dir, "/b");
  EXPECT_EQ(a->addr, "h:1");
  EXPECT_EQ(a->binary, "./p");
  EXPECT_THAT(a->env.names, ElementsAre("FOO"));
  EXPECT_EQ(a->reconnect_timeout, absl::Minutes(5));
  EXPECT_THAT(a->program_args, ElementsAre("--format", "x"));  // after --, the program's
  a = Parse({"logs", "--from", "17", "-f", "h:1", "5"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->from_seq, 17u);
  EXPECT_TRUE(a->follow);
  a = Parse({"cancel", "h:1", "5", "--grace", "0"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->grace, absl::ZeroDuration());
  // The value is the next argument whatever it looks like, as getopt does.
  EXPECT_THAT(Error({"h:1", "./p", "--env", "--X"}), HasSubstr("not a variable name"));
  // A missing value, also before "--", is an error; the options still apply per command.
  EXPECT_THAT(Error({"h:1", "./p", "--format"}), HasSubstr("--format needs a value"));
  EXPECT_THAT(Error({"h:1", "./p", "--format", "--", "x"}), HasSubstr("--format needs a value"));
  EXPECT_THAT(Error({"list", "h:1", "--grace", "1s"}), HasSubstr("--grace is not an option of cdeploy list"));
  // The space form of a flag with no value leaves the next argument alone.
  a = Parse({"submit", "--detach", "h:1", "./p"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->detach);
  EXPECT_EQ(a->addr, "h:1");
}

TEST(ParseArgs, Workspace) {
  absl::StatusOr<Args> a = Parse({"h:1", "//examples:hello", "--workspace=/src/ws"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->workspace, "/src/ws");
  a = Parse({"submit", "--workspace", "../ws", "h:1", "//examples:hello"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->workspace, "../ws");
  EXPECT_THAT(Error({"list", "h:1", "--workspace=/w"}), HasSubstr("--workspace is not an option of cdeploy list"));
  EXPECT_THAT(Error({"h:1", "./p", "--workspace="}), HasSubstr("--workspace wants a directory"));
}

TEST(ParseArgs, Version) {
  for (std::vector<std::string> argv :
       std::vector<std::vector<std::string>>{{"--version"}, {"list", "--version"}, {"h:1", "./p", "--version"}}) {
    absl::StatusOr<Args> a = Parse(argv);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->verb, Verb::kVersion);
  }
  EXPECT_THAT(kVersion, HasSubstr("cdeploy "));
  EXPECT_THAT(Error({"--version=1"}), HasSubstr("takes no value"));
}

TEST(ParseArgs, VerbNames) {
  EXPECT_STREQ(VerbName(Verb::kRun), "run");
  EXPECT_STREQ(VerbName(Verb::kNodes), "nodes");
  EXPECT_STREQ(VerbName(Verb::kDelete), "delete");
}

}  // namespace
}  // namespace constellation::cli
