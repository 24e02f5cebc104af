// Issue 12, item 5: examples/python/submit.py (Debian's python3-grpcio and
// python3-protobuf, the stubs //examples/python:stubs generates) against the
// loopback cluster. The job prints lines 1-3 and waits for stdin; the client
// hangs up after line 3, writes stdin while away (so lines 4-8 are made while
// nobody watches), reconnects with from_seq = the last seq it saw, and
// prints the rest: every line once, in order, and the job's exit code.
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Debian's interpreter, which has the python3-grpcio and python3-protobuf
// packages (a python3 earlier on PATH may not).
constexpr char kPython[] = "/usr/bin/python3";

CommandResult RunSubmitPy(const Cluster& cluster, std::vector<std::string> args) {
  std::vector<std::string> argv = {"env", "PYTHONPATH=" + RunfilePath("examples/python/gen"),
                                   "PYTHONDONTWRITEBYTECODE=1", kPython, RunfilePath("examples/python/submit.py")};
  argv.push_back(cluster.insecure() ? "--insecure" : "--tls=" + TestPki::Get().Client());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, absl::Seconds(120));
}

TEST(PythonClient, ReconnectsMidWayAndSeesEveryLineOnce) {
  ASSERT_EQ(access(kPython, X_OK), 0) << kPython << " is missing: tools/bootstrap.sh installs it";
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  CommandResult r = RunSubmitPy(cluster, {"--disconnect-after=3", "--input=go\n", cluster.bridge_addr(),
                                          RunfilePath("tests/cluster/cluster_programs"), "count", "8", "3"});
  EXPECT_EQ(r.code, 0) << r.error;
  EXPECT_THAT(Lines(r.output),
              ElementsAre("line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 8"))
      << r.error;
  // It did hang up mid-way (the job waits for the input it wrote while away).
  EXPECT_THAT(r.error, HasSubstr("disconnected after seq")) << r.error;
  EXPECT_THAT(r.error, HasSubstr("reconnecting from seq")) << r.error;
  EXPECT_THAT(r.error, HasSubstr("succeeded, exit code 0")) << r.error;
}

TEST(PythonClient, ExitsWithTheJobsExitCode) {
  Cluster cluster(ThreeNodeLoopback());
  ASSERT_TRUE(cluster.ok()) << cluster.Describe();
  // "return 7": the scenarios program's root returns 7 from main.
  CommandResult r = RunSubmitPy(cluster, {cluster.bridge_addr(), RunfilePath("tests/local/scenarios"), "return", "7"});
  EXPECT_EQ(r.code, 7) << r.output << r.error;
  EXPECT_THAT(r.error, HasSubstr("failed, exit code 7")) << r.error;
}

}  // namespace
}  // namespace constellation::testing
