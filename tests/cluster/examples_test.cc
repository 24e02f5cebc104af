// The coroutine, pool and supervisor examples (issue 14, item 4) print their
// known results when run as `bazel run` runs them (local mode) and when
// deployed with cdeploy to a loopback cluster.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/cluster/cluster_fixture.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

struct Example {
  std::string name;
  std::vector<std::string> args;
  std::string line;  // what its root prints last
  int code = 0;      // the program's exit code
};

std::vector<Example> Examples() {
  return {
      {"fibonacci_async", {"7"}, "fibonacci(7) = 13"},
      {"pool", {}, "primes below 2000000: 148933"},
      // The program's exit code is its first failure's, supervised or not (README).
      {"supervisor", {}, "supervisor: worker 3 finished after 2 restarts: 4950", 3},
  };
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr absl::Duration kHangGuard = absl::Seconds(300);
#else
constexpr absl::Duration kHangGuard = absl::Seconds(90);
#endif

TEST(Examples, PrintTheirResultsLocally) {
  for (const Example& example : Examples()) {
    std::vector<std::string> argv = {ExamplePath(example.name)};
    argv.insert(argv.end(), example.args.begin(), example.args.end());
    CommandResult r = RunCommand(argv, kHangGuard);
    EXPECT_EQ(r.code, example.code) << example.name << ": " << r.output << r.error;
    EXPECT_THAT(r.output, HasSubstr(example.line + "\n")) << example.name << ": " << r.error;
  }
}

TEST(Examples, PrintTheirResultsThroughCdeploy) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  for (const Example& example : Examples()) {
    RunResult r = cluster.Deploy(ExamplePath(example.name), example.args);
    EXPECT_EQ(r.exit.ToString(), absl::StrCat("exit code ", example.code))
        << example.name << ": " << r.err << r.trace.Dump();
    EXPECT_THAT(r.trace.Root().out, HasSubstr(example.line + "\n")) << example.name;
  }
}

}  // namespace
}  // namespace constellation::testing
