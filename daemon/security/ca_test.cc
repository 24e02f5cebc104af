#include "daemon/security/ca.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "daemon/security/authz.h"
#include "daemon/security/credentials.h"
#include "daemon/security/files.h"
#include "gtest/gtest.h"
#include "lib/process/private_dir.h"

namespace constellation::daemon::security {
namespace {

class CaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
    dir_ = base + "/ca-XXXXXX";
    ASSERT_NE(mkdtemp(dir_.data()), nullptr);
    ca_ = dir_ + "/ca";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  static std::string Read(const std::string& path) { return ReadFileBounded(path, 1 << 20).value(); }

  std::string dir_, ca_;
};

TEST_F(CaTest, InitAndIssueMakeAPrivateLoadableBundle) {
  ASSERT_TRUE(InitCa(ca_, {}).ok());
  EXPECT_EQ(ModeOf(ca_), 0700u);
  EXPECT_EQ(ModeOf(ca_ + "/ca.key"), 0600u);
  IssueOptions options;
  options.role = Role::kNode;
  options.hosts = {"127.0.0.1", "node-1.example"};
  ASSERT_TRUE(IssueBundle(ca_, "n1", options).ok());
  EXPECT_EQ(ModeOf(ca_ + "/n1"), 0700u);
  EXPECT_EQ(ModeOf(ca_ + "/n1/key.pem"), 0600u);
  EXPECT_EQ(Read(ca_ + "/n1/ca.pem"), Read(ca_ + "/ca.pem"));

  absl::StatusOr<Credentials> creds = Credentials::LoadBundle(ca_ + "/n1");
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->identity(), (Identity{Role::kNode, "n1"}));
  EXPECT_FALSE(creds->insecure());
  EXPECT_NE(creds->ServerCredentials(), nullptr);
  EXPECT_NE(creds->ChannelCredentials(), nullptr);
}

TEST_F(CaTest, ExistingCaAndBundlesAreNotReplacedUnlessForced) {
  ASSERT_TRUE(InitCa(ca_, {}).ok());
  std::string key = Read(ca_ + "/ca.key");
  EXPECT_TRUE(absl::IsAlreadyExists(InitCa(ca_, {})));
  EXPECT_EQ(Read(ca_ + "/ca.key"), key);
  ASSERT_TRUE(IssueBundle(ca_, "alice", {}).ok());
  std::string cert = Read(ca_ + "/alice/cert.pem");
  EXPECT_TRUE(absl::IsAlreadyExists(IssueBundle(ca_, "alice", {})));
  IssueOptions rotate;
  rotate.force = true;
  ASSERT_TRUE(IssueBundle(ca_, "alice", rotate).ok());
  EXPECT_NE(Read(ca_ + "/alice/cert.pem"), cert);
}

TEST_F(CaTest, IssuingWithoutACaSaysHowToMakeOne) {
  absl::Status status = IssueBundle(ca_, "alice", {});
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("constellation ca init"), std::string::npos) << status;
}

TEST_F(CaTest, AForeignCaKeyIsAClearError) {
  std::string other = dir_ + "/other";
  ASSERT_TRUE(InitCa(ca_, {}).ok());
  ASSERT_TRUE(InitCa(other, {}).ok());
  ASSERT_TRUE(WriteFileAtomic(ca_ + "/ca.key", Read(other + "/ca.key"), 0600).ok());
  absl::Status status = IssueBundle(ca_, "alice", {});
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("does not belong"), std::string::npos) << status;
}

TEST_F(CaTest, ABundleMixedFromTwoCasDoesNotLoad) {
  std::string other = dir_ + "/other";
  ASSERT_TRUE(InitCa(ca_, {}).ok());
  ASSERT_TRUE(InitCa(other, {}).ok());
  ASSERT_TRUE(IssueBundle(ca_, "alice", {}).ok());
  ASSERT_TRUE(WriteFileAtomic(ca_ + "/alice/ca.pem", Read(other + "/ca.pem"), 0644).ok());
  absl::StatusOr<Credentials> creds = Credentials::LoadBundle(ca_ + "/alice");
  EXPECT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("not a valid certificate of the CA"), std::string::npos) << creds.status();
}

TEST_F(CaTest, HostsAndNamesCannotSmuggleConfiguration) {
  ASSERT_TRUE(InitCa(ca_, {}).ok());
  for (const char* host : {"a,IP:1.2.3.4", "x;y", "", "-bad.example", "a..b"}) {
    IssueOptions options;
    options.role = Role::kNode;
    options.hosts = {host};
    EXPECT_FALSE(IssueBundle(ca_, "n1", options).ok()) << host;
  }
  EXPECT_FALSE(IssueBundle(ca_, "../escape", {}).ok());
  EXPECT_FALSE(Exists(dir_ + "/escape"));
}

TEST_F(CaTest, LoadForRoleChecksTheRoleAndExplainsAMissingBundle) {
  absl::StatusOr<Credentials> missing = LoadForRole({ca_ + "/none", false}, "", {Role::kNode}, "constellation");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("constellation ca issue"), std::string::npos) << missing.status();
  ASSERT_TRUE(InitCa(ca_, {}).ok());
  ASSERT_TRUE(IssueBundle(ca_, "alice", {}).ok());
  absl::StatusOr<Credentials> wrong = LoadForRole({ca_ + "/alice", false}, "", {Role::kNode}, "constellation");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("is a client certificate"), std::string::npos) << wrong.status();
  EXPECT_TRUE(LoadForRole({ca_ + "/alice", false}, "", {Role::kClient, Role::kAdmin}, "cdeploy").ok());
  EXPECT_TRUE(LoadForRole({"", true}, "/nonexistent", {Role::kNode}, "constellation")->insecure());
}

TEST_F(CaTest, AuthorizeAllowsOnlyTheNamedRoles) {
  Identity node{Role::kNode, "n1"};
  EXPECT_TRUE(Authorize(node, {Role::kNode}, "Spawn").ok());
  absl::StatusOr<Identity> denied = Authorize(node, {Role::kMaster}, "Launch");
  EXPECT_TRUE(absl::IsPermissionDenied(denied.status())) << denied.status();
  EXPECT_NE(denied.status().message().find("node n1"), std::string::npos) << denied.status();
  EXPECT_TRUE(absl::IsUnauthenticated(
      Authorize(absl::UnauthenticatedError("no certificate"), {Role::kMaster}, "Launch").status()));
  EXPECT_TRUE(MayManage({Role::kAdmin, "root"}, {Role::kClient, "alice"}));
  EXPECT_TRUE(MayManage({Role::kClient, "alice"}, {Role::kClient, "alice"}));
  EXPECT_FALSE(MayManage({Role::kClient, "bob"}, {Role::kClient, "alice"}));
}

TEST_F(CaTest, PrivateDirectoriesRefuseWhatOthersControl) {
  std::string open_dir = dir_ + "/open";
  ASSERT_EQ(mkdir(open_dir.c_str(), 0777), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(internal::EnsurePrivateDir(open_dir)));
  std::string link = dir_ + "/link";
  ASSERT_EQ(symlink(dir_.c_str(), link.c_str()), 0);
  EXPECT_FALSE(internal::EnsurePrivateDir(link).ok());
  if (geteuid() == 0) {
    std::string foreign = dir_ + "/foreign";
    ASSERT_EQ(mkdir(foreign.c_str(), 0700), 0);
    ASSERT_EQ(chown(foreign.c_str(), 4242, 4242), 0);
    absl::Status status = internal::EnsurePrivateDir(foreign);
    EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  }
  EXPECT_TRUE(internal::EnsurePrivateDir(dir_ + "/fresh/deeper").ok());
  EXPECT_EQ(ModeOf(dir_ + "/fresh/deeper"), 0700u);
}

}  // namespace
}  // namespace constellation::daemon::security
