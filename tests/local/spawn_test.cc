// spawn() (issue 3, items 2 and 6): children, nesting, argv and environment,
// 100 processes at once, several threads, lambdas and arguments of every kind.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// Root spawns n children; child i prints "child i of <root>".
void CheckChildren(int n) {
  RunResult r = RunScenario({"children", std::to_string(n)});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out, absl::StrCat("spawned ", n, "\n"));
  EXPECT_EQ(root.ExitString(), "code 0");
  ASSERT_THAT(root.children, SizeIs(n)) << r.trace.Dump();
  EXPECT_THAT(r.trace.processes, SizeIs(n + 1));
  std::set<std::string> outputs;
  for (const std::string& pid : root.children) {
    const ProcessRecord* child = r.trace.Find(pid);
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(child->parent, root.pid);
    EXPECT_EQ(child->depth, 1);
    EXPECT_EQ(child->ExitString(), "code 0") << pid;
    EXPECT_TRUE(child->children.empty());
    EXPECT_EQ(child->err, "") << pid;
    outputs.insert(child->out);
  }
  std::set<std::string> want;
  for (int i = 0; i < n; ++i) want.insert(absl::StrCat("child ", i, " of ", root.pid, "\n"));
  EXPECT_EQ(outputs, want);
}

TEST(Spawn, TwoChildren) { CheckChildren(2); }
TEST(Spawn, TenChildren) { CheckChildren(10); }
TEST(Spawn, HundredProcessesAtOnce) { CheckChildren(100); }

TEST(Spawn, NestedThreeDeep) {
  RunResult r = RunScenario({"nested", "3"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
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
}

TEST(Spawn, ChildrenSeeTheParentsArgvAndEnvironment) {
  RunOptions options;
  options.args = {"argv_env", "extra one", "--flag=x", "ünïcode", ""};
  const std::string value = "value with spaces = and 'quotes'";
  options.env = {{"CONSTELLATION_TEST_VAR", value}};
  RunResult r = RunScenario(options);
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  const std::string argv = ScenarioPath() + "|argv_env|extra one|--flag=x|ünïcode|";
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out, absl::StrCat("root argv=", argv, "\nroot env=", value, "\nroot main argv=", argv, "\n"));
  ASSERT_THAT(root.children, SizeIs(1)) << r.trace.Dump();
  const ProcessRecord* child = r.trace.Find(root.children[0]);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->out, absl::StrCat("child argv=", argv, "\nchild env=", value, "\n"));
  ASSERT_THAT(child->children, SizeIs(1)) << r.trace.Dump();
  const ProcessRecord* grandchild = r.trace.Find(child->children[0]);
  ASSERT_NE(grandchild, nullptr);
  EXPECT_EQ(grandchild->out, absl::StrCat("grandchild argv=", argv, "\ngrandchild env=", value, "\n"));
  // The runtime's own hand-off variable does not leak into the user's environment.
  for (const auto& [pid, p] : r.trace.processes) EXPECT_THAT(p.out, Not(HasSubstr("CONSTELLATION_INIT")));
}

TEST(Spawn, FromSeveralThreadsAtOnce) {
  RunResult r = RunScenario({"threads", "4", "5"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  const ProcessRecord& root = r.trace.Root();
  EXPECT_EQ(root.out, "threads done\n");
  ASSERT_THAT(root.children, SizeIs(20)) << r.trace.Dump();
  std::set<std::string> outputs, want;
  for (const std::string& pid : root.children) {
    const ProcessRecord* child = r.trace.Find(pid);
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(child->ExitString(), "code 0");
    outputs.insert(child->out);
  }
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 5; ++i) want.insert(absl::StrCat("thread ", t, " spawn ", i, "\n"));
  }
  EXPECT_EQ(outputs, want);
}

TEST(Spawn, CapturelessLambdas) {
  RunResult r = RunScenario({"lambda"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  const ProcessRecord& root = r.trace.Root();
  ASSERT_THAT(root.children, SizeIs(2)) << r.trace.Dump();
  EXPECT_EQ(r.trace.Find(root.children[0])->out, absl::StrCat("lambda got 41 and a string from ", root.pid, "\n"));
  EXPECT_EQ(r.trace.Find(root.children[1])->out, "unary-plus lambda ran\n");
}

// The child checks every argument against the value the parent passed and
// prints "ok <what>" or "MISMATCH <what>" for each, then exits 1 on a mismatch.
void CheckArgs(const std::string& scenario, const std::vector<std::string>& kinds) {
  RunResult r = RunScenario({scenario});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  const ProcessRecord& root = r.trace.Root();
  ASSERT_THAT(root.children, SizeIs(1)) << r.trace.Dump();
  const ProcessRecord* child = r.trace.Find(root.children[0]);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->ExitString(), "code 0") << child->out << child->err;
  EXPECT_THAT(child->out, Not(HasSubstr("MISMATCH")));
  for (const std::string& kind : kinds) EXPECT_THAT(child->out, HasSubstr("ok " + kind + "\n"));
  EXPECT_THAT(child->out, HasSubstr("all arguments ok\n"));
  EXPECT_EQ(child->err, "");
}

TEST(SpawnArgs, Scalars) {
  CheckArgs("args_scalar", {"parent pid", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "float", "double",
                            "bool true", "bool false", "char", "enum"});
}

TEST(SpawnArgs, StringsContainersOptionalsPairsTuples) {
  CheckArgs("args_containers",
            {"string with NULs", "vector<int>", "vector<string>", "map", "set", "unordered_map", "deque",
             "optional with value", "optional empty", "pair", "tuple", "variant", "array", "empty nested vector"});
}

TEST(SpawnArgs, ProtobufUserStructPidAndLargeString) {
  CheckArgs("args_messages", {"protobuf message", "user struct", "vector of user structs", "empty optional user struct",
                              "pid argument", "1 MiB string"});
}

TEST(SpawnArgs, NoArguments) {
  RunResult r = RunScenario({"args_none"});
  EXPECT_EQ(r.exit.ToString(), "exit code 0");
  ASSERT_THAT(r.trace.Root().children, SizeIs(1));
  EXPECT_EQ(r.trace.Find(r.trace.Root().children[0])->out, "no arguments ok\n");
}

}  // namespace
}  // namespace constellation::testing
