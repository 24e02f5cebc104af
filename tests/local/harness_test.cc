// The shared harness's own parsing (tests/harness): the JSON format and the
// trace invariants.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/events.h"
#include "tests/harness/json.h"
#include "tests/harness/trace.h"

namespace constellation::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(Json, ParsesFlatObjects) {
  auto o = ParseFlatJson(R"( {"a":"x\"y\\z\n\u0041", "n":-12,"t":true,"f":false} )");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->at("a").str, "x\"y\\z\nA");
  EXPECT_EQ(o->at("n").number, -12);
  EXPECT_TRUE(o->at("t").boolean);
  EXPECT_FALSE(o->at("f").boolean);
  EXPECT_TRUE(ParseFlatJson("{}").ok());
}

TEST(Json, RejectsMalformed) {
  for (const char* bad : {"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":[1]}", "{\"a\":{}}",
                          "{\"a\":1,\"a\":2}", "{\"a\":\"\x01\"}", "{\"a\":-}", "not json"}) {
    EXPECT_FALSE(ParseFlatJson(bad).ok()) << bad;
  }
}

TEST(Event, ParsesEveryKind) {
  auto spawn = ParseEvent(R"({"event":"spawn","pid":"0123abc","child":"fffffff"})");
  ASSERT_TRUE(spawn.ok()) << spawn.status();
  EXPECT_EQ(spawn->type, Event::kSpawn);
  EXPECT_EQ(spawn->child, "fffffff");
  auto out = ParseEvent(R"({"event":"output","pid":"0123abc","fd":2,"data":"AP8K"})");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->data, std::string("\0\xff\n", 3));
  EXPECT_EQ(out->fd, 2);
  auto eof = ParseEvent(R"({"event":"output","pid":"0123abc","fd":1,"eof":true})");
  ASSERT_TRUE(eof.ok()) << eof.status();
  EXPECT_EQ(eof->type, Event::kEof);
  auto code = ParseEvent(R"({"event":"exit","pid":"0123abc","code":3})");
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(code->code, 3);
  auto sig = ParseEvent(R"({"event":"exit","pid":"0123abc","signal":"SIGABRT"})");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->signal, "SIGABRT");
}

TEST(Event, RejectsWhatDesignDoesNotAllow) {
  for (const char* bad : {
           R"({"event":"spawn","pid":"0123abc"})",
           R"({"event":"spawn","pid":"0123ab","child":"fffffff"})",
           R"({"event":"spawn","pid":"0123ABC","child":"fffffff"})",
           R"({"event":"output","pid":"0123abc","fd":3,"data":""})",
           R"({"event":"output","pid":"0123abc","fd":1,"data":"!!"})",
           R"({"event":"output","pid":"0123abc","fd":1,"eof":false})",
           R"({"event":"output","pid":"0123abc","fd":1,"data":"","eof":true})",
           R"({"event":"exit","pid":"0123abc","code":0,"signal":"SIGKILL"})",
           R"({"event":"exit","pid":"0123abc","signal":"SIGNOPE"})",
           R"({"event":"exit","pid":"0123abc","code":0,"extra":1})",
           R"({"event":"hello","pid":"0123abc"})",
       }) {
    EXPECT_FALSE(ParseEvent(bad).ok()) << bad;
  }
}

TEST(Trace, BuildsTheTree) {
  Trace t = ParseTrace({
      R"({"event":"output","pid":"aaaaaaa","fd":1,"data":"aGk="})",
      R"({"event":"spawn","pid":"aaaaaaa","child":"bbbbbbb"})",
      R"({"event":"exit","pid":"aaaaaaa","code":0})",
      R"({"event":"spawn","pid":"bbbbbbb","child":"ccccccc"})",
      R"({"event":"output","pid":"ccccccc","fd":2,"data":"eA=="})",
      R"({"event":"exit","pid":"ccccccc","signal":"SIGKILL"})",
      R"({"event":"exit","pid":"bbbbbbb","code":2})",
  });
  EXPECT_THAT(t.errors, IsEmpty());
  EXPECT_EQ(t.root, "aaaaaaa");
  EXPECT_EQ(t.Root().out, "hi");
  EXPECT_EQ(t.Find("ccccccc")->err, "x");
  EXPECT_EQ(t.Find("ccccccc")->depth, 2);
  EXPECT_EQ(t.Find("ccccccc")->parent, "bbbbbbb");
  EXPECT_EQ(t.ExpectedBridgeCode(), 137);
}

TEST(Trace, FindsBrokenInvariants) {
  // A child speaking before its spawn line.
  Trace early = ParseTrace({
      R"({"event":"spawn","pid":"aaaaaaa","child":"bbbbbbb"})",
      R"({"event":"output","pid":"ccccccc","fd":1,"data":""})",
      R"({"event":"exit","pid":"aaaaaaa","code":0})",
      R"({"event":"exit","pid":"bbbbbbb","code":0})",
  });
  ASSERT_THAT(early.errors, SizeIs(1));
  EXPECT_THAT(early.errors[0], HasSubstr("before any spawn line"));
  // Exiting twice, never exiting, output after EOF and after exit.
  Trace bad = ParseTrace({
      R"({"event":"spawn","pid":"aaaaaaa","child":"bbbbbbb"})",
      R"({"event":"output","pid":"aaaaaaa","fd":1,"eof":true})",
      R"({"event":"output","pid":"aaaaaaa","fd":1,"data":"eA=="})",
      R"({"event":"exit","pid":"aaaaaaa","code":0})",
      R"({"event":"exit","pid":"aaaaaaa","code":0})",
  });
  EXPECT_THAT(bad.errors, SizeIs(4));
  EXPECT_FALSE(ParseTrace({}).errors.empty());
}

TEST(Signals, Names) {
  EXPECT_EQ(SignalNumber("SIGKILL"), 9);
  EXPECT_EQ(SignalNumber("SIGABRT"), 6);
  EXPECT_EQ(SignalNumber("KILL"), -1);
}

}  // namespace
}  // namespace constellation::testing
