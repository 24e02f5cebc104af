#pragma once

// Unix socket addresses for tests, in private directories under /tmp that are
// removed, with everything in them, when the test binary exits.
//
// /tmp rather than $TEST_TMPDIR: a socket path has at most 107 bytes, and
// Bazel's test directories are longer than that.
//
// Threading: call from the test's main thread.

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace constellation::daemon::testing {

namespace socket_dir_internal {
inline std::vector<std::string>& Dirs() {
  static auto* dirs = new std::vector<std::string>;
  return *dirs;
}
inline void RemoveAll() {
  for (const std::string& dir : Dirs()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}
}  // namespace socket_dir_internal

// "unix:/tmp/<prefix>.XXXXXX/master-N.sock" in a new 0700 directory: an
// address nobody listens on yet, and where a server can listen later without
// racing anyone for it (a released TCP port could be taken meanwhile).
inline std::string NewUnixSocketAddress(const std::string& prefix) {
  static int n = 0;
  std::string dir = "/tmp/" + prefix + ".XXXXXX";
  EXPECT_NE(mkdtemp(dir.data()), nullptr) << dir;
  if (socket_dir_internal::Dirs().empty()) atexit(socket_dir_internal::RemoveAll);
  socket_dir_internal::Dirs().push_back(dir);
  return absl::StrCat("unix:", dir, "/master-", ++n, ".sock");
}

}  // namespace constellation::daemon::testing
