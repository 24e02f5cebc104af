// Runs zygote_program under the local bridge with the zygote on (with spares
// and without) and off: in each a spawned process starts from the state a
// fresh exec reaches at init() (the program checks; see zygote_program.cc),
// through the zygote when the environment is init()'s and by exec otherwise.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern char** environ;

namespace {

struct Result {
  int status = -1;
  std::string output;
};

// Runs the program with CONSTELLATION_ZYGOTE=`mode` (unset when empty) and
// `extra` ("K=V", if any) in its environment, its stdout and stderr into a
// file; waits for it.
Result RunProgram(const std::string& mode, const std::string& extra = "") {
  std::string program =
      std::string(getenv("TEST_SRCDIR")) + "/" + getenv("TEST_WORKSPACE") + "/lib/process/zygote_program";
  std::string log = std::string(getenv("TEST_TMPDIR")) + "/zygote_program." + (mode.empty() ? "default" : mode);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string v = *e;
    if (v.rfind("CONSTELLATION_ZYGOTE=", 0) != 0) env.push_back(v);
  }
  if (!mode.empty()) env.push_back("CONSTELLATION_ZYGOTE=" + mode);
  if (!extra.empty()) env.push_back(extra);
  std::vector<char*> envp;
  for (std::string& v : env) envp.push_back(v.data());
  envp.push_back(nullptr);
  char* argv[] = {program.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  Result result;
  int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return result;
  while (waitpid(pid, &result.status, 0) < 0) {
  }
  std::ifstream in(log);
  result.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return result;
}

TEST(ZygoteIntegration, SpawnedProcessesStartFromInitsStateThroughTheZygote) {
  Result r = RunProgram("");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.output;
}

TEST(ZygoteIntegration, SpawnedProcessesStartFromInitsStateThroughTheZygoteWithoutSpares) {
  Result r = RunProgram("no-spare");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.output;
}

TEST(ZygoteIntegration, SpawnedProcessesStartFromInitsStateByExecWhenOff) {
  Result r = RunProgram("off");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.output;
}

TEST(ZygoteIntegration, AnUnknownSettingIsRefused) {
  Result r = RunProgram("sometimes");
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2) << r.output;
  EXPECT_NE(r.output.find("CONSTELLATION_ZYGOTE=sometimes is not understood"), std::string::npos) << r.output;
}

// Only a node daemon names a zygote's socket: a program started with the
// variable set otherwise refuses to start rather than serve on some fd.
TEST(ZygoteIntegration, AZygoteSocketThatIsNoneIsRefused) {
  for (const char* value : {"0", "-1", "x", "999"}) {
    Result r = RunProgram("", std::string("CONSTELLATION_ZYGOTE_FD=") + value);
    EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2) << value << ": " << r.output;
    EXPECT_NE(r.output.find(std::string("CONSTELLATION_ZYGOTE_FD=") + value + " is not a zygote's socket"),
              std::string::npos)
        << r.output;
  }
}

}  // namespace
