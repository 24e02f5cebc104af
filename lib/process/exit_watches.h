#pragma once

// ExitWatches: who asked to be told when which process is gone (local.proto's
// WatchRequest): watched pid -> the connections that watch it. I/O-free; the
// bridge answers from it. A connection may watch at most kMaxPerConnection
// pids at once (a process's channel peers; the bound keeps a hostile one from
// growing the table without end).
//
// Not thread-safe.

#include <cstddef>
#include <map>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "lib/core/pid.h"

namespace constellation {

class ExitWatches {
 public:
  static constexpr size_t kMaxPerConnection = 1 << 16;

  // `conn` wants to hear when `pid` is gone. Watching twice is one watch.
  // RESOURCE_EXHAUSTED past kMaxPerConnection.
  absl::Status Add(int conn, const Pid& pid);
  // `pid` is gone: its watchers, forgotten.
  std::vector<int> Take(const Pid& pid);
  // `conn` closed: its watches are forgotten.
  void Forget(int conn);

  size_t size() const { return by_pid_.size(); }

 private:
  std::map<Pid, std::set<int>> by_pid_;
  std::map<int, std::set<Pid>> by_conn_;
};

}  // namespace constellation
