// Tests of the harness itself: the flat JSON parser, and the hang guard (a
// scenario that never finishes is killed with its whole process group, and
// the test that ran it fails instead of hanging).
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "tests/channels/scenario.h"
#include "tests/harness/json.h"

namespace constellation::testing {
namespace {

TEST(FlatJson, ParsesTheBridgeFormat) {
  auto obj = ParseFlatJson(R"({"event":"output","pid":"3fecd01","fd":1,"data":"aGk=\/","eof":true,"n":-3})");
  ASSERT_TRUE(obj.ok()) << obj.status();
  EXPECT_EQ(obj->at("event").str, "output");
  EXPECT_EQ(obj->at("fd").kind, JsonValue::kNumber);
  EXPECT_EQ(obj->at("fd").number, 1);
  EXPECT_EQ(obj->at("n").number, -3);
  EXPECT_EQ(obj->at("data").str, "aGk=/");
  EXPECT_TRUE(obj->at("eof").boolean);
  auto escaped = ParseFlatJson(R"({"s":"a\"b\\c\n\u0041\u00e9"})");
  ASSERT_TRUE(escaped.ok()) << escaped.status();
  EXPECT_EQ(escaped->at("s").str, "a\"b\\c\nA\xc3\xa9");
  auto empty = ParseFlatJson("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(FlatJson, RejectsMalformedLines) {
  for (const char* bad : {"", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":\"unterminated}", "{a:1}",
                          "{\"a\":1,\"a\":2}", "[1]", "{\"a\":\"\\q\"}"}) {
    EXPECT_FALSE(ParseFlatJson(bad).ok()) << bad;
  }
}

// Whether OS process `pid` is gone (or only a zombie waiting to be reaped).
bool Gone(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string all;
  if (!std::getline(stat, all)) return true;
  size_t close = all.rfind(')');
  return close == std::string::npos || all.substr(close + 2, 1) == "Z" || all.substr(close + 2, 1) == "X";
}

TEST(HangGuard, KillsTheWholeProcessGroupAndFails) {
  static RunResult run;
  absl::Time start = absl::Now();
  EXPECT_NONFATAL_FAILURE(run = RunChannelScenario({"hang"}, absl::Seconds(3)), "did not finish within 3s");
  EXPECT_TRUE(run.exit.timed_out);
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  // Both processes said where they were before the guard fired.
  std::vector<pid_t> pids;
  for (const std::string& r : run.trace.Results()) {
    pid_t pid = 0;
    std::vector<std::string> words = absl::StrSplit(r, ' ');
    if (words.size() == 4 && words[0] == "hanging" && absl::SimpleAtoi(words[3], &pid)) pids.push_back(pid);
  }
  ASSERT_EQ(pids.size(), 2u) << run.Dump();
  absl::Time limit = absl::Now() + absl::Seconds(10);
  for (pid_t pid : pids) {
    while (!Gone(pid) && absl::Now() < limit) usleep(2000);  // bounded re-check: nothing to wait on for a non-child
    EXPECT_TRUE(Gone(pid)) << "process " << pid << " of the hung scenario is still alive";
  }
}

}  // namespace
}  // namespace constellation::testing
