#include "daemon/gone_table.h"

#include "absl/strings/str_cat.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::FromProto;

absl::StatusOr<GoneTable::WatchResult> GoneTable::Watch(Conn conn, uint64_t deployment, const std::vector<Pid>& pids,
                                                        const std::function<bool(const Pid&)>& local) {
  if (pids.size() > static_cast<size_t>(kMaxPidsPerPacket)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a watch request names ", pids.size(), " processes; at most ", kMaxPidsPerPacket));
  }
  Deployment& d = deployments_[deployment];
  std::set<std::pair<uint64_t, Pid>>& mine = by_conn_[conn];
  WatchResult result;
  for (const Pid& pid : pids) {
    if (auto it = d.gone.find(pid); it != d.gone.end()) {
      result.now.push_back(it->second);
      continue;
    }
    if (mine.contains({deployment, pid})) continue;  // asked twice
    if (mine.size() >= kMaxWatchesPerConn) {
      return absl::ResourceExhaustedError(
          absl::StrCat("a process watches more than ", kMaxWatchesPerConn, " processes at once"));
    }
    mine.insert({deployment, pid});
    std::set<Conn>& watchers = d.watchers[pid];
    watchers.insert(conn);
    if (watchers.size() == 1 && !local(pid)) result.ask.push_back(pid);  // others asked already
  }
  if (mine.empty()) by_conn_.erase(conn);
  return result;
}

std::vector<GoneTable::Notice> GoneTable::Gone(uint64_t deployment, const pb::ProcessGone& gone) {
  std::vector<Notice> notices;
  absl::StatusOr<Pid> pid = FromProto(gone.pid());
  if (!pid.ok()) return notices;
  Deployment& d = deployments_[deployment];
  auto [kept, added] = d.gone.emplace(*pid, gone);
  if (added) {
    d.order.push_back(*pid);
    while (d.order.size() > kMaxGonePerDeployment) {
      d.gone.erase(d.order.front());
      d.order.pop_front();
    }
  }
  auto watched = d.watchers.find(*pid);
  if (watched == d.watchers.end()) return notices;
  // The verdict that stands (the first), which `kept` may no longer point to if it was just evicted.
  const pb::ProcessGone& verdict = added ? gone : kept->second;
  for (Conn conn : watched->second) {
    notices.push_back({conn, verdict});
    auto mine = by_conn_.find(conn);
    if (mine == by_conn_.end()) continue;
    mine->second.erase({deployment, *pid});
    if (mine->second.empty()) by_conn_.erase(mine);
  }
  d.watchers.erase(watched);
  return notices;
}

void GoneTable::Close(Conn conn) {
  auto mine = by_conn_.find(conn);
  if (mine == by_conn_.end()) return;
  for (const auto& [deployment, pid] : mine->second) {
    auto d = deployments_.find(deployment);
    if (d == deployments_.end()) continue;
    auto watched = d->second.watchers.find(pid);
    if (watched == d->second.watchers.end()) continue;
    watched->second.erase(conn);
    if (watched->second.empty()) d->second.watchers.erase(watched);
  }
  by_conn_.erase(mine);
}

void GoneTable::Drop(uint64_t deployment) {
  auto d = deployments_.find(deployment);
  if (d == deployments_.end()) return;
  for (const auto& [pid, conns] : d->second.watchers) {
    for (Conn conn : conns) {
      auto mine = by_conn_.find(conn);
      if (mine == by_conn_.end()) continue;
      mine->second.erase({deployment, pid});
      if (mine->second.empty()) by_conn_.erase(mine);
    }
  }
  deployments_.erase(d);
}

std::map<uint64_t, std::vector<Pid>> GoneTable::Pending() const {
  std::map<uint64_t, std::vector<Pid>> pending;
  for (const auto& [deployment, d] : deployments_) {
    for (const auto& [pid, conns] : d.watchers) pending[deployment].push_back(pid);
  }
  return pending;
}

size_t GoneTable::watches(Conn conn) const {
  auto mine = by_conn_.find(conn);
  return mine == by_conn_.end() ? 0 : mine->second.size();
}

size_t GoneTable::known(uint64_t deployment) const {
  auto d = deployments_.find(deployment);
  return d == deployments_.end() ? 0 : d->second.gone.size();
}

}  // namespace constellation::daemon
