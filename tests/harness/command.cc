#include "tests/harness/command.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "tests/harness/program.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  CommandResult result;
  std::string path = argv.empty() ? "" : FindProgram(argv[0]);
  if (access(path.c_str(), X_OK) != 0) {
    result.output = ErrnoText(absl::StrCat("cannot run ", path).c_str());
    return result;
  }
  RunOptions options;
  options.args.assign(argv.begin() + 1, argv.end());
  options.format = std::nullopt;
  options.timeout = timeout;
  Program program(path, std::move(options));
  result.code = program.Wait().ShellCode();
  result.output = program.stdout_text();
  result.error = program.stderr_text();
  return result;
}

}  // namespace constellation::testing
