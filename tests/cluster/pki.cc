#include "tests/cluster/pki.h"

#include <sys/stat.h>

#include <mutex>

#include "gtest/gtest.h"
#include "tests/cluster/cluster_fixture.h"

namespace constellation::testing {
namespace {

void Ca(std::vector<std::string> args) {
  args.insert(args.begin(), {DaemonPath(), "ca"});
  CommandResult r = RunCommand(args);
  EXPECT_EQ(r.code, 0) << "constellation ca " << args[2] << " failed: " << r.output << r.error;
}

std::mutex pki_mu;

}  // namespace

TestPki& TestPki::Get() {
  static TestPki* pki = new TestPki();
  return *pki;
}

TestPki::TestPki() {
  ca_dir_ = MakeTempDir("pki-") + "/ca";
  Ca({"init", ca_dir_});
}

std::string TestPki::Bundle(const std::string& role, const std::string& name, const std::string& host) {
  std::lock_guard<std::mutex> lock(pki_mu);
  std::string dir = ca_dir_ + "/" + name;
  struct stat st;
  if (stat((dir + "/cert.pem").c_str(), &st) == 0) return dir;
  std::vector<std::string> args = {"issue", ca_dir_, name, "--role=" + role};
  if (!host.empty()) args.push_back("--host=" + host);
  Ca(args);
  return dir;
}

}  // namespace constellation::testing
