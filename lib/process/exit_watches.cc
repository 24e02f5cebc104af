#include "lib/process/exit_watches.h"

#include "absl/strings/str_cat.h"

namespace constellation {

absl::Status ExitWatches::Add(int conn, const Pid& pid) {
  std::set<Pid>& mine = by_conn_[conn];
  if (mine.contains(pid)) return absl::OkStatus();
  if (mine.size() >= kMaxPerConnection) {
    return absl::ResourceExhaustedError(absl::StrCat("a process watches more than ", kMaxPerConnection, " processes"));
  }
  mine.insert(pid);
  by_pid_[pid].insert(conn);
  return absl::OkStatus();
}

std::vector<int> ExitWatches::Take(const Pid& pid) {
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return {};
  std::vector<int> conns(it->second.begin(), it->second.end());
  by_pid_.erase(it);
  for (int conn : conns) {
    auto mine = by_conn_.find(conn);
    if (mine == by_conn_.end()) continue;
    mine->second.erase(pid);
    if (mine->second.empty()) by_conn_.erase(mine);
  }
  return conns;
}

void ExitWatches::Forget(int conn) {
  auto mine = by_conn_.find(conn);
  if (mine == by_conn_.end()) return;
  for (const Pid& pid : mine->second) {
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) continue;
    it->second.erase(conn);
    if (it->second.empty()) by_pid_.erase(it);
  }
  by_conn_.erase(mine);
}

}  // namespace constellation
