// Outsiders who know a process's Pids but not the program's secret
// (scenarios_intruder.cc): a forged hello that claims to be a child, a flood
// of unproved connections and a trickled hello. The child's value arrives.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;

TEST(Intruder, ForgedHelloClaimingToBeAChildFailsAndTheRealValueArrives) {
  RunResult run = RunChannelScenario({"forged_child"});
  ExpectAllExitedZero(run, 3);
  ExpectResult(run, "forged child: the forged hello failed, the real value arrived");
  EXPECT_THAT(run.trace.Root().err, HasSubstr("the dialer's proof is wrong")) << run.Dump();
}

TEST(Intruder, FloodAndTrickleDoNotCostARealChildsValue) {
  RunResult run = RunChannelScenario({"flood"});
  ExpectAllExitedZero(run, 3);
  ExpectResult(run, "flood: 1100 connections, at most 64 held; the trickle was closed");
  ExpectResult(run, "flood: the child's value arrived");
  EXPECT_THAT(run.trace.Root().err, HasSubstr("no handshake within 5s")) << run.Dump();
}

}  // namespace
}  // namespace constellation::testing
