// NodeAgent: exit verdicts. Its processes' watch packets, answered from the
// GoneTable, and the verdicts from the master (Gone, AskAgain).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/node_agent.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::FromProto;

absl::Status NodeAgent::OnWatch(Conn conn, const Pid& speaker, const pb::WatchRequest& watch) {
  if (watch.pids_size() > GoneTable::kMaxPidsPerPacket) {
    return absl::InvalidArgumentError(absl::StrCat("a watch request names ", watch.pids_size(), " processes; at most ",
                                                   GoneTable::kMaxPidsPerPacket));
  }
  std::vector<Pid> pids;
  pids.reserve(watch.pids_size());
  for (const pb::Pid& p : watch.pids()) {
    absl::StatusOr<Pid> pid = FromProto(p);
    if (!pid.ok()) return absl::InvalidArgumentError(absl::StrCat("a watch request: ", pid.status().message()));
    pids.push_back(*pid);
  }
  uint64_t deployment = 0;
  std::set<Pid> local;  // this node's live processes of the deployment among them
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = launched_.find(speaker);
    if (it == launched_.end()) return absl::OkStatus();  // its exit is reported: nothing more is heard
    deployment = it->second.deployment;
    for (const Pid& pid : pids) {
      auto other = launched_.find(pid);
      if (other != launched_.end() && other->second.deployment == deployment) local.insert(pid);
    }
  }
  absl::StatusOr<GoneTable::WatchResult> result =
      gone_.Watch(conn, deployment, pids, [&](const Pid& pid) { return local.contains(pid); });
  if (!result.ok()) return result.status();
  for (pb::ProcessGone& gone : result->now) Tell({{conn, std::move(gone)}});
  if (!result->ask.empty() && callbacks_.on_watch) callbacks_.on_watch(deployment, result->ask);
  return absl::OkStatus();
}

void NodeAgent::Gone(uint64_t deployment, std::vector<pb::ProcessGone> gone) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    verdicts_in_.emplace_back(deployment, std::move(gone));
  }
  server_->Wake();
}

void NodeAgent::AskAgain() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ask_again_ = true;
  }
  server_->Wake();
}

void NodeAgent::ApplyVerdicts() {
  std::vector<std::pair<uint64_t, std::vector<pb::ProcessGone>>> verdicts;
  bool ask_again = false;
  std::set<uint64_t> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    verdicts.swap(verdicts_in_);
    ask_again = std::exchange(ask_again_, false);
    for (const auto& [deployment, gone] : verdicts) {
      if (!RunsDeploymentLocked(deployment)) ended.insert(deployment);  // nobody here to tell
    }
  }
  for (const auto& [deployment, gone] : verdicts) {
    if (ended.contains(deployment)) continue;
    for (const pb::ProcessGone& g : gone) Tell(gone_.Gone(deployment, g));
  }
  DropEnded(ended);
  if (!ask_again || !callbacks_.on_watch) return;
  std::map<uint64_t, std::vector<Pid>> pending = gone_.Pending();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [deployment, pids] : pending) {
      std::erase_if(pids, [&](const Pid& pid) {  // this node's own: their monitors tell
        auto it = launched_.find(pid);
        return it != launched_.end() && it->second.deployment == deployment;
      });
    }
  }
  for (const auto& [deployment, pids] : pending) {
    for (size_t at = 0; at < pids.size(); at += GoneTable::kMaxPidsPerPacket) {
      size_t end = std::min(pids.size(), at + GoneTable::kMaxPidsPerPacket);
      callbacks_.on_watch(deployment, std::vector<Pid>(pids.begin() + at, pids.begin() + end));
    }
  }
}

void NodeAgent::Tell(const std::vector<GoneTable::Notice>& notices) {
  for (const GoneTable::Notice& notice : notices) {
    pb::LocalMessage message;
    *message.mutable_gone() = notice.gone;
    server_->Send(notice.conn, message);
  }
}

void NodeAgent::DropEnded(const std::set<uint64_t>& deployments) {
  std::vector<uint64_t> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint64_t deployment : deployments) {
      if (!RunsDeploymentLocked(deployment)) ended.push_back(deployment);
    }
  }
  for (uint64_t deployment : ended) gone_.Drop(deployment);
}

bool NodeAgent::Runs(uint64_t deployment) const {
  std::lock_guard<std::mutex> lock(mu_);
  return RunsDeploymentLocked(deployment);
}

bool NodeAgent::RunsDeploymentLocked(uint64_t deployment) const {
  for (const auto& [pid, launched] : launched_) {
    if (launched.deployment == deployment) return true;
  }
  return false;
}

}  // namespace constellation::daemon
