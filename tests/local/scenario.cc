#include "tests/local/scenario.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/harness/spawn.h"

namespace constellation::testing {

std::string ScenarioPath() { return RunfilePath("tests/local/scenarios"); }

RunResult RunScenario(RunOptions options) {
  RunChecks checks;
  checks.what = absl::StrCat("scenario \"", absl::StrJoin(options.args, " "), "\"");
  checks.json = options.format.has_value() && *options.format == "json";
  Program program(ScenarioPath(), std::move(options));
  return Finish(program, checks);
}

RunResult RunScenario(std::vector<std::string> args) {
  RunOptions options;
  options.args = std::move(args);
  return RunScenario(std::move(options));
}

}  // namespace constellation::testing
