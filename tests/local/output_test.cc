// Output capture and stdin forwarding (issue 3, items 3 and 6): binary-safe
// stdout, stdout and stderr kept apart, output that arrives while the process
// still runs, and the root process's stdin with its EOF.
#include <signal.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::SizeIs;

TEST(Output, All256ByteValuesArriveIntact) {
  RunResult r = RunScenario({"bytes256"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out.size(), 512u);
  EXPECT_TRUE(root.out == all + all) << "stdout differs: " << absl::CHexEscape(root.out);
  EXPECT_EQ(root.err, "");
}

TEST(Output, StdoutAndStderrAreKeptApart) {
  RunResult r = RunScenario({"stdout_stderr"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out, "out 0\nout 1\nout 2\nout 3\nout 4\nout no newline");
  EXPECT_EQ(root.err, "err 0\nerr 1\nerr 2\nerr 3\nerr 4\nerr no newline");
  // In the JSON format everything is on the bridge's stdout, nothing on its stderr.
  EXPECT_EQ(r.err, "");
  // Every output event says which fd it came from.
  for (const Event& e : r.trace.events) {
    if (e.type != Event::kOutput) continue;
    EXPECT_EQ(e.data.find(e.fd == 1 ? "err" : "out"), std::string::npos) << "fd " << e.fd << ": " << e.data;
  }
}

// A child prints a line and sleeps: the line must reach the bridge's stdout
// while the child still runs. The test then ends the program with SIGTERM.
TEST(Output, ChildLineArrivesWhileItStillRuns) {
  RunOptions options;
  options.args = {"print_then_sleep"};
  Program program(ScenarioPath(), options);
  EventReader reader(&program);
  std::string child;
  ASSERT_TRUE(reader.ReadUntil([&](const Event& e) {
    if (e.type == Event::kOutput && e.fd == 1 && e.pid != reader.root && reader.out[e.pid] == "ready\n") {
      child = e.pid;
      return true;
    }
    return false;
  })) << "the child's line never arrived; stdout:\n"
      << program.stdout_text() << "\nstderr:\n"
      << program.stderr_text();
  EXPECT_FALSE(reader.exited.contains(child));
  EXPECT_FALSE(program.exited());
  program.Signal(SIGTERM);
  ExitStatus exit = program.Wait();
  EXPECT_EQ(exit.ToString(), "exit code 143");
  EXPECT_THAT(program.WaitGroupEmpty(absl::Seconds(10)), SizeIs(0));
}

// The root prints a line and then blocks on stdin: the line must show while
// it runs; closing stdin lets it finish.
TEST(Output, RootLineArrivesWhileItStillRuns) {
  RunOptions options;
  options.args = {"print_then_wait_stdin"};
  options.close_stdin = false;
  Program program(ScenarioPath(), options);
  EventReader reader(&program);
  ASSERT_TRUE(reader.ReadUntil([&](const Event& e) {
    return e.type == Event::kOutput && reader.out[e.pid] == "ready\n";
  })) << program.stdout_text()
      << program.stderr_text();
  EXPECT_TRUE(reader.exited.empty());
  EXPECT_FALSE(program.exited());
  program.CloseStdin();
  ExitStatus exit = program.Wait();
  EXPECT_EQ(exit.ToString(), "exit code 0");
  Trace trace = ParseTrace(program.lines());
  EXPECT_TRUE(trace.errors.empty()) << trace.Dump();
  EXPECT_EQ(trace.Root().out, "ready\nstdin closed\n");
  EXPECT_THAT(program.WaitGroupEmpty(absl::Seconds(10)), SizeIs(0));
}

TEST(Stdin, ForwardedToRootWithEof) {
  RunOptions options;
  options.args = {"stdin_echo"};
  options.stdin_data = "first\nsecond\n\nlast without newline";
  RunResult r = RunScenario(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  EXPECT_EQ(r.trace.Root().out, "echo: first\necho: second\necho: \necho: last without newline\neof after 4 lines\n");
}

TEST(Stdin, EmptyStdinIsJustEof) {
  RunResult r = RunScenario({"stdin_echo"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  EXPECT_EQ(r.trace.Root().out, "eof after 0 lines\n");
}

TEST(Stdin, ForwardedLineByLineAsWritten) {
  RunOptions options;
  options.args = {"stdin_echo"};
  options.close_stdin = false;
  Program program(ScenarioPath(), options);
  EventReader reader(&program);
  for (const char* word : {"one", "two", "three"}) {
    program.WriteStdin(absl::StrCat(word, "\n"));
    // The echo arrives before stdin is closed: input is forwarded as written.
    ASSERT_TRUE(reader.ReadUntil([&](const Event& e) {
      return e.type == Event::kOutput &&
             reader.out[e.pid].find(absl::StrCat("echo: ", word, "\n")) != std::string::npos;
    })) << program.stdout_text()
        << program.stderr_text();
  }
  EXPECT_FALSE(program.exited());
  program.CloseStdin();
  EXPECT_EQ(program.Wait().ToString(), "exit code 0");
  Trace trace = ParseTrace(program.lines());
  EXPECT_TRUE(trace.errors.empty()) << trace.Dump();
  EXPECT_EQ(trace.Root().out, "echo: one\necho: two\necho: three\neof after 3 lines\n");
}

TEST(Stdin, ManyLines) {
  RunOptions options;
  options.args = {"stdin_echo"};
  std::string want;
  for (int i = 0; i < 5000; ++i) {
    options.stdin_data += absl::StrCat("line ", i, "\n");
    want += absl::StrCat("echo: line ", i, "\n");
  }
  want += "eof after 5000 lines\n";
  RunResult r = RunScenario(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  EXPECT_TRUE(r.trace.Root().out == want)
      << "stdout has " << r.trace.Root().out.size() << " bytes, want " << want.size();
}

}  // namespace
}  // namespace constellation::testing
