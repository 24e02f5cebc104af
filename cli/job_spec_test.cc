#include "cli/job_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace constellation::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(MakeJobSpec, WhatTheAttachedRunSubmits) {
  absl::StatusOr<Args> args = ParseArgs({"h:1", "/build/out/fibonacci", "--env=EXTRA", "--", "a", "b"}, {});
  ASSERT_TRUE(args.ok()) << args.status();
  v1::BinaryRef ref;
  ref.set_sha256(std::string(64, 'a'));
  ref.set_size(123);
  const char* env[] = {"PATH=/bin", "SECRET_TOKEN=x", "EXTRA=1", "CONSTELLATION_VERBOSE=1", nullptr};
  v1::JobSpec spec = MakeJobSpec(*args, "/build/out/fibonacci", ref, const_cast<char**>(env), "r1");
  EXPECT_EQ(spec.binary().sha256(), ref.sha256());
  EXPECT_EQ(spec.binary().size(), 123u);
  EXPECT_THAT(spec.argv(), ElementsAre("fibonacci", "a", "b"));
  EXPECT_THAT(spec.env(), UnorderedElementsAre("PATH=/bin", "EXTRA=1", "CONSTELLATION_VERBOSE=1"));
  EXPECT_EQ(spec.name(), "fibonacci");
  EXPECT_EQ(spec.request_id(), "r1");
  EXPECT_TRUE(spec.attach_stdin());
  EXPECT_EQ(spec.ttl_after_finished_ms(), 0u);
  EXPECT_TRUE(spec.labels().empty());
  EXPECT_FALSE(spec.has_resources()) << "the master asks the binary, as cdeploy always did";
}

TEST(MakeJobSpec, DetachedWithLabelsAndTtl) {
  absl::StatusOr<Args> args =
      ParseArgs({"submit", "h:1", "--detach", "--label=team=ml", "--ttl=1h", "--env-all", "prog"}, {});
  ASSERT_TRUE(args.ok()) << args.status();
  const char* env[] = {"SECRET_TOKEN=x", nullptr};
  v1::JobSpec spec = MakeJobSpec(*args, "prog", v1::BinaryRef(), const_cast<char**>(env), "r2");
  EXPECT_THAT(spec.argv(), ElementsAre("prog"));
  EXPECT_THAT(spec.env(), ElementsAre("SECRET_TOKEN=x"));
  EXPECT_FALSE(spec.attach_stdin()) << "nobody writes a detached job's stdin";
  EXPECT_EQ(spec.ttl_after_finished_ms(), 3600000u);
  EXPECT_THAT(spec.labels(), UnorderedElementsAre(Pair("team", "ml")));
}

TEST(NewRequestId, FreshHexEachTime) {
  std::string a = NewRequestId(), b = NewRequestId();
  EXPECT_THAT(a, MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace constellation::cli
