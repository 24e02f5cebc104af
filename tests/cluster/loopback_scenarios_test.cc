// Issue 5, item 6 (a): the local-mode scenario program (tests/local/scenarios.cc)
// deployed with `cdeploy --format=json` on a loopback cluster of three node
// daemons (2 GiB/2 cpu with the bridge, 1 GiB/1 cpu, 0.5 GiB/0.5 cpu) and a
// master, checking the same process trees, outputs and exit codes as local
// mode: each scenario is also run locally and the two traces are compared
// (pids aside), on top of the explicit checks the local tests make.
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// A trace with pids taken out: one line per process (depth, number of
// children, exit, stdout, stderr, EOF flags), pids in the output replaced by
// "<pid>", sorted. Two runs of a scenario have the same summary whatever
// their pids and the interleaving of processes.
std::vector<std::string> Summary(const Trace& trace) {
  std::vector<std::pair<std::string, std::string>> pids;
  for (const auto& [pid, p] : trace.processes) pids.push_back({pid, "<pid>"});
  std::vector<std::string> lines;
  for (const auto& [pid, p] : trace.processes) {
    lines.push_back(absl::StrCat("depth ", p.depth, ", ", p.children.size(), " children, ", p.ExitString(),
                                 ", stdout \"", absl::CHexEscape(absl::StrReplaceAll(p.out, pids)), "\", stderr \"",
                                 absl::CHexEscape(absl::StrReplaceAll(p.err, pids)), "\"",
                                 p.out_eof ? "" : ", no stdout EOF", p.err_eof ? "" : ", no stderr EOF"));
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

class LoopbackScenarios : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new Cluster(ThreeNodeLoopback()); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->ok()) << cluster_->Describe(); }
  void TearDown() override {
    if (HasFailure()) std::cerr << cluster_->Describe();
  }

  static RunResult Deploy(std::vector<std::string> args) { return cluster_->Deploy(ScenarioPath(), std::move(args)); }
  static RunResult Deploy(const DeployOptions& options) { return cluster_->Deploy(ScenarioPath(), options); }

  // Runs the scenario in local mode too and expects the same exit code and
  // the same trace, pids aside.
  static void ExpectSameAsLocal(const RunResult& cluster, RunOptions local_options) {
    std::string what = absl::StrJoin(local_options.args, " ");
    RunResult local = RunScenario(std::move(local_options));
    EXPECT_EQ(cluster.exit.ToString(), local.exit.ToString()) << "scenario " << what;
    EXPECT_EQ(Summary(cluster.trace), Summary(local.trace))
        << "scenario " << what << ": the cluster's trace differs from local mode's\ncluster:\n"
        << cluster.trace.Dump() << "local:\n"
        << local.trace.Dump();
  }
  static void ExpectSameAsLocal(const RunResult& cluster, std::vector<std::string> args) {
    RunOptions options;
    options.args = std::move(args);
    ExpectSameAsLocal(cluster, std::move(options));
  }

  static Cluster* cluster_;
};

Cluster* LoopbackScenarios::cluster_ = nullptr;

// ---- exit codes -------------------------------------------------------------------------

TEST_F(LoopbackScenarios, ExitZero) {
  RunResult r = Deploy({"exit0"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  ASSERT_THAT(r.trace.processes, SizeIs(1)) << r.trace.Dump();
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out, "hello\n");
  EXPECT_EQ(root.ExitString(), "code 0");
  EXPECT_TRUE(root.out_eof);
  EXPECT_TRUE(root.err_eof);
  ASSERT_FALSE(r.trace.events.empty());
  EXPECT_EQ(r.trace.events.back().type, Event::kExit);
  EXPECT_EQ(r.err, "");
  ExpectSameAsLocal(r, {"exit0"});
}

TEST_F(LoopbackScenarios, ExitOne) {
  RunResult r = Deploy({"exit1"});
  EXPECT_EQ(r.exit.ToString(), "exit code 1") << r.err;
  EXPECT_EQ(r.trace.Root().out, "failing\n");
  EXPECT_EQ(r.trace.Root().ExitString(), "code 1");
  ExpectSameAsLocal(r, {"exit1"});
}

TEST_F(LoopbackScenarios, AbortIs134) {
  RunResult r = Deploy({"abort"});
  EXPECT_EQ(r.exit.ToString(), "exit code 134") << r.err;
  EXPECT_EQ(r.trace.Root().out, "aborting\n");
  EXPECT_EQ(r.trace.Root().ExitString(), "signal SIGABRT");
  ExpectSameAsLocal(r, {"abort"});
}

TEST_F(LoopbackScenarios, ReturnFromMainGivesItsCode) {
  for (int code : {3, 42, 255}) {
    SCOPED_TRACE(code);
    RunResult r = Deploy({"return", std::to_string(code)});
    EXPECT_EQ(r.exit.ToString(), absl::StrCat("exit code ", code)) << r.err;
    EXPECT_EQ(r.trace.Root().ExitString(), absl::StrCat("code ", code));
  }
}

TEST_F(LoopbackScenarios, ChildFailureDecidesTheCode) {
  RunResult r = Deploy({"child_exit", "5"});
  EXPECT_EQ(r.exit.ToString(), "exit code 5") << r.err;
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.ExitString(), "code 0");
  ASSERT_THAT(root.children, SizeIs(1)) << r.trace.Dump();
  EXPECT_EQ(r.trace.Find(root.children[0])->out, "exiting with 5\n");
  EXPECT_EQ(r.trace.Find(root.children[0])->ExitString(), "code 5");
  ExpectSameAsLocal(r, {"child_exit", "5"});
}

TEST_F(LoopbackScenarios, RootKilledWithSigkill) {
  RunResult r = Deploy({"kill_root"});
  EXPECT_EQ(r.exit.ToString(), "exit code 137") << r.err;
  EXPECT_EQ(r.trace.Root().ExitString(), "signal SIGKILL");
  ExpectSameAsLocal(r, {"kill_root"});
}

TEST_F(LoopbackScenarios, ChildKilledWithSigkill) {
  RunResult r = Deploy({"kill_child"});
  EXPECT_EQ(r.exit.ToString(), "exit code 137") << r.err;
  ASSERT_THAT(r.trace.Root().children, SizeIs(1)) << r.trace.Dump();
  EXPECT_EQ(r.trace.Find(r.trace.Root().children[0])->ExitString(), "signal SIGKILL");
  ExpectSameAsLocal(r, {"kill_child"});
}

// ---- output ----------------------------------------------------------------------------------

TEST_F(LoopbackScenarios, All256ByteValues) {
  RunResult r = Deploy({"bytes256"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_TRUE(r.trace.Root().out == all + all) << absl::CHexEscape(r.trace.Root().out);
  EXPECT_EQ(r.trace.Root().err, "");
  ExpectSameAsLocal(r, {"bytes256"});
}

TEST_F(LoopbackScenarios, StdoutAndStderrKeptApart) {
  RunResult r = Deploy({"stdout_stderr"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out, "out 0\nout 1\nout 2\nout 3\nout 4\nout no newline");
  EXPECT_EQ(root.err, "err 0\nerr 1\nerr 2\nerr 3\nerr 4\nerr no newline");
  EXPECT_EQ(r.err, "");  // JSON: everything on cdeploy's stdout
  for (const Event& e : r.trace.events) {
    if (e.type == Event::kOutput) {
      EXPECT_EQ(e.data.find(e.fd == 1 ? "err" : "out"), std::string::npos) << e.data;
    }
  }
  ExpectSameAsLocal(r, {"stdout_stderr"});
}

// ---- spawn --------------------------------------------------------------------------------------

TEST_F(LoopbackScenarios, TenChildren) {
  RunResult r = Deploy({"children", "10"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out, "spawned 10\n");
  ASSERT_THAT(root.children, SizeIs(10)) << r.trace.Dump();
  std::set<std::string> outputs, want;
  for (const std::string& pid : root.children) {
    const ProcessRecord* child = r.trace.Find(pid);
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(child->parent, root.pid);
    EXPECT_EQ(child->depth, 1);
    EXPECT_EQ(child->ExitString(), "code 0");
    EXPECT_EQ(child->err, "");
    outputs.insert(child->out);
  }
  for (int i = 0; i < 10; ++i) want.insert(absl::StrCat("child ", i, " of ", root.pid, "\n"));
  EXPECT_EQ(outputs, want);
  ExpectSameAsLocal(r, {"children", "10"});
}

TEST_F(LoopbackScenarios, NestedThreeDeep) {
  RunResult r = Deploy({"nested", "3"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  EXPECT_THAT(r.trace.processes, SizeIs(4));
  const ProcessRecord* p = &r.trace.Root();
  for (int depth = 1; depth <= 3; ++depth) {
    ASSERT_THAT(p->children, SizeIs(1)) << "at depth " << depth - 1 << "\n" << r.trace.Dump();
    const ProcessRecord* child = r.trace.Find(p->children[0]);
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(child->parent, p->pid);
    EXPECT_EQ(child->depth, depth);
    EXPECT_EQ(child->out, absl::StrCat("depth ", depth, "\n"));
    EXPECT_EQ(child->ExitString(), "code 0");
    p = child;
  }
  EXPECT_THAT(p->children, IsEmpty());
  ExpectSameAsLocal(r, {"nested", "3"});
}

TEST_F(LoopbackScenarios, FromSeveralThreads) {
  RunResult r = Deploy({"threads", "4", "5"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  ASSERT_THAT(r.trace.Root().children, SizeIs(20)) << r.trace.Dump();
  ExpectSameAsLocal(r, {"threads", "4", "5"});
}

TEST_F(LoopbackScenarios, ChildrenSeeTheParentsArgvAndEnvironment) {
  const std::vector<std::string> args = {"argv_env", "extra one", "--flag=x", "ünïcode", ""};
  const std::string value = "value with spaces = and 'quotes'";
  DeployOptions options;
  options.args = args;
  options.env = {{"CONSTELLATION_TEST_VAR", value}};
  RunResult r = Deploy(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  const ProcessRecord& root = r.trace.Root();
  // argv[0] is cdeploy's choice (the binary's name: its path on the cluster
  // means nothing to the user); everything after it is exactly what was given.
  std::string tail = "|" + absl::StrJoin(args, "|");
  std::vector<std::string> lines = Lines(root.out);
  ASSERT_THAT(lines, SizeIs(3)) << root.out;
  ASSERT_THAT(lines[0], HasSubstr("root argv="));
  std::string argv = lines[0].substr(std::string("root argv=").size());
  ASSERT_GE(argv.size(), tail.size());
  EXPECT_EQ(argv.substr(argv.size() - tail.size()), tail) << argv;
  std::string argv0 = argv.substr(0, argv.size() - tail.size());
  EXPECT_THAT(argv0, Not(IsEmpty()));
  EXPECT_EQ(lines[1], "root env=" + value);
  EXPECT_EQ(lines[2], "root main argv=" + argv);
  ASSERT_THAT(root.children, SizeIs(1)) << r.trace.Dump();
  const ProcessRecord* child = r.trace.Find(root.children[0]);
  EXPECT_EQ(child->out, absl::StrCat("child argv=", argv, "\nchild env=", value, "\n"));
  ASSERT_THAT(child->children, SizeIs(1)) << r.trace.Dump();
  const ProcessRecord* grandchild = r.trace.Find(child->children[0]);
  EXPECT_EQ(grandchild->out, absl::StrCat("grandchild argv=", argv, "\ngrandchild env=", value, "\n"));
  for (const auto& [pid, p] : r.trace.processes) EXPECT_THAT(p.out, Not(HasSubstr("CONSTELLATION_INIT")));
}

// The child checks every argument against the value the parent passed and
// prints "ok <what>" or "MISMATCH <what>" for each.
void CheckArgs(const RunResult& r, const std::vector<std::string>& kinds) {
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  ASSERT_THAT(r.trace.Root().children, SizeIs(1)) << r.trace.Dump();
  const ProcessRecord* child = r.trace.Find(r.trace.Root().children[0]);
  EXPECT_EQ(child->ExitString(), "code 0") << child->out << child->err;
  EXPECT_THAT(child->out, Not(HasSubstr("MISMATCH")));
  for (const std::string& kind : kinds) EXPECT_THAT(child->out, HasSubstr("ok " + kind + "\n"));
  EXPECT_THAT(child->out, HasSubstr("all arguments ok\n"));
}

TEST_F(LoopbackScenarios, ScalarArguments) {
  RunResult r = Deploy({"args_scalar"});
  CheckArgs(r, {"parent pid", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "float", "double", "bool true",
                "bool false", "char", "enum"});
  ExpectSameAsLocal(r, {"args_scalar"});
}

TEST_F(LoopbackScenarios, StringsContainersOptionalsPairsTuples) {
  RunResult r = Deploy({"args_containers"});
  CheckArgs(r, {"string with NULs", "vector<int>", "vector<string>", "map", "set", "unordered_map", "deque",
                "optional with value", "optional empty", "pair", "tuple", "variant", "array", "empty nested vector"});
  ExpectSameAsLocal(r, {"args_containers"});
}

// Spawn arguments of 1 MiB (local mode passes them through a memfd).
TEST_F(LoopbackScenarios, ProtobufUserStructPidAndOneMiBString) {
  RunResult r = Deploy({"args_messages"});
  CheckArgs(r, {"protobuf message", "user struct", "vector of user structs", "empty optional user struct",
                "pid argument", "1 MiB string"});
  ExpectSameAsLocal(r, {"args_messages"});
}

TEST_F(LoopbackScenarios, LambdasAndNoArguments) {
  RunResult r = Deploy({"lambda"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  ASSERT_THAT(r.trace.Root().children, SizeIs(2)) << r.trace.Dump();
  EXPECT_EQ(r.trace.Find(r.trace.Root().children[0])->out,
            absl::StrCat("lambda got 41 and a string from ", r.trace.root, "\n"));
  ExpectSameAsLocal(r, {"lambda"});
  RunResult none = Deploy({"args_none"});
  EXPECT_EQ(none.exit.ToString(), "exit code 0") << none.err;
  ExpectSameAsLocal(none, {"args_none"});
}

// ---- stdin ----------------------------------------------------------------------------------------

TEST_F(LoopbackScenarios, StdinForwardedWithEof) {
  DeployOptions options;
  options.args = {"stdin_echo"};
  options.stdin_data = "first\nsecond\n\nlast without newline";
  RunResult r = Deploy(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  EXPECT_EQ(r.trace.Root().out, "echo: first\necho: second\necho: \necho: last without newline\neof after 4 lines\n");
  RunOptions local;
  local.args = options.args;
  local.stdin_data = options.stdin_data;
  ExpectSameAsLocal(r, local);
}

TEST_F(LoopbackScenarios, EmptyStdinIsJustEof) {
  RunResult r = Deploy({"stdin_echo"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  EXPECT_EQ(r.trace.Root().out, "eof after 0 lines\n");
}

TEST_F(LoopbackScenarios, StdinForwardedLineByLineAsWritten) {
  DeployOptions options;
  options.args = {"stdin_echo"};
  options.close_stdin = false;
  std::unique_ptr<Program> program = cluster_->StartDeploy(ScenarioPath(), options);
  EventReader reader(program.get());
  for (const char* word : {"one", "two", "three"}) {
    program->WriteStdin(absl::StrCat(word, "\n"));
    ASSERT_TRUE(reader.ReadUntil([&](const Event& e) {
      return e.type == Event::kOutput &&
             reader.out[e.pid].find(absl::StrCat("echo: ", word, "\n")) != std::string::npos;
    })) << program->stdout_text()
        << program->stderr_text();
  }
  EXPECT_FALSE(program->exited());
  program->CloseStdin();
  EXPECT_EQ(program->Wait().ToString(), "exit code 0");
  Trace trace = ParseTrace(program->lines());
  EXPECT_TRUE(trace.errors.empty()) << trace.Dump();
  EXPECT_EQ(trace.Root().out, "echo: one\necho: two\necho: three\neof after 3 lines\n");
}

TEST_F(LoopbackScenarios, ManyStdinLines) {
  DeployOptions options;
  options.args = {"stdin_echo"};
  std::string want;
  for (int i = 0; i < 2000; ++i) {
    options.stdin_data += absl::StrCat("line ", i, "\n");
    want += absl::StrCat("echo: line ", i, "\n");
  }
  want += "eof after 2000 lines\n";
  RunResult r = Deploy(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 0") << r.err;
  EXPECT_TRUE(r.trace.Root().out == want)
      << "stdout has " << r.trace.Root().out.size() << " bytes, want " << want.size();
}

// A child's line shows while it still runs.
TEST_F(LoopbackScenarios, ChildLineArrivesWhileItStillRuns) {
  DeployOptions options;
  options.args = {"print_then_sleep"};
  std::unique_ptr<Program> program = cluster_->StartDeploy(ScenarioPath(), options);
  EventReader reader(program.get());
  std::string child;
  ASSERT_TRUE(reader.ReadUntil([&](const Event& e) {
    if (e.type == Event::kOutput && e.fd == 1 && e.pid != reader.root && reader.out[e.pid] == "ready\n") {
      child = e.pid;
      return true;
    }
    return false;
  })) << program->stdout_text()
      << program->stderr_text();
  EXPECT_FALSE(reader.exited.contains(child));
  EXPECT_FALSE(program->exited());
  // Ctrl-C: cdeploy cancels the deployment; the cluster kills the process.
  program->Signal(SIGINT);
  ExitStatus exit = program->Wait();
  EXPECT_TRUE(exit.exited && exit.code != 0) << exit.ToString() << "\n" << program->stderr_text();
  for (size_t i = 0; i < cluster_->size(); ++i) {
    std::vector<pid_t> left = cluster_->node(i).WaitLaunchedGone(absl::Seconds(10));
    EXPECT_THAT(left, IsEmpty()) << "node " << i << " still runs the deployment 10 s after cdeploy was interrupted";
  }
}

// ---- monitors and links (issue 14, tests/local/monitor_scenarios.cc) -------------------

TEST_F(LoopbackScenarios, MonitorsAndLinksThroughTheCluster) {
  const std::string program = RunfilePath("tests/local/monitor_scenarios");
  RunResult exited = cluster_->Deploy(program, {"monitor_exit", "3"});
  const ProcessRecord& root = exited.trace.Root();
  ASSERT_THAT(root.children, SizeIs(1)) << exited.Dump();
  EXPECT_EQ(root.ExitString(), "code 0") << exited.Dump();
  EXPECT_THAT(root.out,
              ::testing::StartsWith("down exited 3 abnormal\nprocess " + root.children[0] + " exited with code 3\n"))
      << exited.Dump();

  // A made-up pid: the master answers that no such process is in the deployment.
  RunResult none = cluster_->Deploy(program, {"monitor_noprocess"});
  EXPECT_EQ(none.trace.Root().ExitString(), "code 0") << none.Dump();
  EXPECT_THAT(none.trace.Root().out, ::testing::StartsWith("down no_process abnormal\n")) << none.Dump();

  RunResult linked = cluster_->Deploy(program, {"link", "3"});
  const ProcessRecord& parent = linked.trace.Root();
  ASSERT_THAT(parent.children, SizeIs(1)) << linked.Dump();
  EXPECT_EQ(parent.ExitString(), "code 79") << linked.Dump();  // kLinkedExitCode
  EXPECT_EQ(parent.out, "linked\n");
  EXPECT_EQ(parent.err, "constellation: terminating: linked process " + parent.children[0] +
                            " exited with code 3 (call trap_exits(true) to receive it as a Down instead)\n")
      << linked.Dump();
}

}  // namespace
}  // namespace constellation::testing
