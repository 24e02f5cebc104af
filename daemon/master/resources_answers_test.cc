#include "daemon/master/resources_answers.h"

#include "gtest/gtest.h"

namespace constellation::daemon::master {
namespace {

pb::ResourcesQuery Query(const std::string& sha, std::vector<std::string> argv, std::vector<std::string> env = {}) {
  pb::ResourcesQuery query;
  query.mutable_binary()->set_sha256(sha);
  query.mutable_binary()->set_size(100);
  for (const std::string& arg : argv) query.add_argv(arg);
  for (const std::string& var : env) query.add_env(var);
  return query;
}

TEST(ResourcesAnswersTest, AnAnswerIsFoundForTheSameBinaryArgvAndEnvOnly) {
  ResourcesAnswers answers;
  pb::ResourcesQuery query = Query("aa", {"prog", "--big"}, {"A=1"});
  EXPECT_FALSE(answers.Find(query).has_value());
  answers.Remember(query, Resources{1 << 30, 2});
  std::optional<Resources> found = answers.Find(Query("aa", {"prog", "--big"}, {"A=1"}));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->mem, uint64_t{1} << 30);
  EXPECT_EQ(found->cpu, 2);
  EXPECT_FALSE(answers.Find(Query("bb", {"prog", "--big"}, {"A=1"})).has_value()) << "another binary";
  EXPECT_FALSE(answers.Find(Query("aa", {"prog"}, {"A=1"})).has_value()) << "other arguments";
  EXPECT_FALSE(answers.Find(Query("aa", {"prog", "--big"}, {"A=2"})).has_value()) << "another environment";
  EXPECT_FALSE(answers.Find(Query("aa", {"prog", "--big", "A=1"})).has_value()) << "argv and env are told apart";
}

TEST(ResourcesAnswersTest, TheOldestAnswerGoesFirstWhenFull) {
  ResourcesAnswers answers(2);
  answers.Remember(Query("a", {}), Resources{1, 1});
  answers.Remember(Query("b", {}), Resources{2, 1});
  answers.Remember(Query("a", {}), Resources{3, 1});  // replaces; still the oldest
  answers.Remember(Query("c", {}), Resources{4, 1});
  EXPECT_FALSE(answers.Find(Query("a", {})).has_value());
  EXPECT_EQ(answers.Find(Query("b", {}))->mem, 2u);
  EXPECT_EQ(answers.Find(Query("c", {}))->mem, 4u);
}

TEST(ResourcesAnswersTest, LongArgvsAreKeyedByTheirHash) {
  ResourcesAnswers answers(1);
  answers.Remember(Query("a", {std::string(1 << 20, 'x')}), Resources{5, 1});
  EXPECT_EQ(answers.Find(Query("a", {std::string(1 << 20, 'x')}))->mem, 5u);
  EXPECT_FALSE(answers.Find(Query("a", {std::string((1 << 20) - 1, 'x')})).has_value());
}

}  // namespace
}  // namespace constellation::daemon::master
