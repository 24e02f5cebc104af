#pragma once

// `constellation ca ...`: the command line of the cluster CA (ca.h).
//
//   constellation ca init DIR [--days=N] [--force]
//   constellation ca issue DIR NAME --role=master|node|client|admin [--host=H]... [--days=N] [--force]
//   constellation ca show BUNDLE_DIR

#include <string>
#include <vector>

namespace constellation::daemon::security {

// `args` follow "ca"; returns the process exit code (0, 1 on failure, 2 on
// bad usage), having printed what happened.
int RunCaCommand(const std::vector<std::string>& args);

}  // namespace constellation::daemon::security
