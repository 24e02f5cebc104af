#pragma once

// The cluster tests' certificate authority: one CA per test process (under
// TEST_TMPDIR), made with the real `constellation ca` commands, and bundles
// issued from it on demand, so every test cluster runs the documented secure
// way (mutual TLS) unless a test asks for --insecure.

#include <string>

namespace constellation::testing {

class TestPki {
 public:
  // The process-wide instance; made on first use (test failures if the
  // commands fail).
  static TestPki& Get();

  const std::string& ca_dir() const { return ca_dir_; }
  // The bundle directory for `role` (master, node, client, admin) named
  // `name`, issued for `host` (masters and nodes) on first use.
  std::string Bundle(const std::string& role, const std::string& name, const std::string& host = "");
  // The usual ones: a master or node serving at `host`, the tests' client.
  std::string Master(const std::string& host) { return Bundle("master", "master-" + host, host); }
  std::string Node(const std::string& host) { return Bundle("node", "node-" + host, host); }
  std::string Client() { return Bundle("client", "tester"); }

 private:
  TestPki();
  std::string ca_dir_;
};

}  // namespace constellation::testing
