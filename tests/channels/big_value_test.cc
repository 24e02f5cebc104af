// A 100 MiB value each way between two processes; the child exits right after
// sending its (the exit flush carries it). And a stream of 1 MiB values, each
// handed to the receiver in the buffer it arrived in. A target of its own:
// slow under TSan.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
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

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // the sanitizer's allocator: no malloc thresholds, a quarantine
#else
constexpr bool kSanitized = false;
#endif

// 250 values of 1 MiB (256 pages each) after a warm-up: taking a value's
// buffer must not make every next buffer fault in afresh, as glibc's default
// trimming did for many of them (8 000 to 21 000 faults in three runs).
TEST(Bulk, AStreamOfBigStringsDoesNotFaultInEachBuffer) {
  RunResult run = RunChannelScenario({"big_stream"});
  ExpectAllExitedZero(run, 2);
  std::string result = ExpectResult(run, "big_stream: 250 values of 1 MiB after the warm-up, ");
  std::vector<std::string> words = absl::StrSplit(result, ' ');
  uint64_t faults = 0;
  ASSERT_GE(words.size(), 10u) << result;
  ASSERT_TRUE(absl::SimpleAtoi(words[words.size() - 3], &faults)) << result;
  if (!kSanitized) {
    EXPECT_LT(faults, 250u * 16) << result;
  }
}

}  // namespace
}  // namespace constellation::testing
