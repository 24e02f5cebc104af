// A 100 MiB value each way between two processes; the child exits right after
// sending its (the exit flush carries it). A target of its own: slow under TSan.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

TEST(Bulk, HundredMiBValueEachWay) {
  // A longer hang guard: 400 MiB of copies is slow under TSan on a loaded machine.
  RunResult run = RunChannelScenario({"big_value", "100"}, absl::Seconds(150));
  ExpectAllExitedZero(run, 2);
  ExpectResult(run, "big value of 100 MiB each way in ");
  ExpectResult(run, "child received and sent 104857600 bytes");
}

}  // namespace
}  // namespace constellation::testing
