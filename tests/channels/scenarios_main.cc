// main() of the channel scenarios program (scenarios.h): init(), then the
// scenario argv[1] names.
#include <cstdio>
#include <string>

#include "constellation/constellation.h"
#include "tests/channels/scenarios.h"
#include "tests/channels/scenarios_util.h"

namespace channel_scenarios {
namespace {

int Run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <scenario> [args]\n", argv[0]);
    return 64;
  }
  std::string name = argv[1];
  for (auto* run : {RunBasicScenario, RunManyScenario, RunFailureScenario, RunBulkScenario, RunHostileScenario,
                    RunIntruderScenario, RunLivenessScenario}) {
    int code = run(name, argc, argv);
    if (code != kUnknownScenario) return code;
  }
  std::fprintf(stderr, "unknown scenario %s\n", name.c_str());
  return 64;
}

}  // namespace
}  // namespace channel_scenarios

int main(int argc, char** argv) {
  // Resources are enforced: big values need more than the default.
  bool big = argc > 1 && (std::string(argv[1]) == "big_value" || std::string(argv[1]) == "big_stream");
  channel_scenarios::LimitFilesForScenario(argc, argv);
  constellation::init(big ? channel_scenarios::kBigValueResources : constellation::Resources());
  return channel_scenarios::Run(argc, argv);
}
