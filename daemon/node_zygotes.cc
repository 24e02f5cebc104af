#include "daemon/node_zygotes.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "daemon/log/log.h"

namespace constellation::daemon {

using process_internal::kZygoteEnv;
using process_internal::LaunchDescription;
using process_internal::LaunchOptions;
using process_internal::ParseZygoteMode;
using process_internal::Zygote;
using process_internal::ZygoteMode;

std::optional<absl::StatusOr<pid_t>> NodeZygotes::Launch(uint64_t deployment, const LaunchDescription& launch) {
  // A root returns into main(): only spawned functions are forked.
  if (!launch.info.has_call()) return std::nullopt;
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = zygotes_.find(deployment);
    if (it == zygotes_.end()) return std::nullopt;
    entry = it->second;
  }
  std::lock_guard<std::mutex> lock(entry->mu);
  if (entry->zygote == nullptr || !entry->zygote->Serves(launch.options)) return std::nullopt;
  absl::StatusOr<pid_t> forked = entry->zygote->Launch(launch.info);
  if (!absl::IsUnavailable(forked.status())) return forked;
  // It died (killed, say): this launch and the rest execute.
  LogWarning("node", "deployment %d: its zygote is gone (%s); launching by exec", deployment,
             forked.status().message());
  entry->zygote.reset();
  return std::nullopt;
}

ZygoteMode NodeZygotes::ModeFor(const LaunchOptions& options) const {
  ZygoteMode mode = mode_;
  const std::string name = std::string(kZygoteEnv) + "=";
  for (const std::string& e : options.env) {
    if (e.rfind(name, 0) != 0) continue;
    absl::StatusOr<ZygoteMode> asked = ParseZygoteMode(e.c_str() + name.size());
    // Not understood: the deployment's own processes say so when they
    // start one (local mode); here it only means no zygote.
    ZygoteMode own = asked.ok() ? *asked : ZygoteMode::kOff;
    if (own < mode) mode = own;  // kOff < kNoSpare < kOn
  }
  return mode;
}

bool NodeZygotes::Start(uint64_t deployment, const LaunchDescription& launch) {
  if (!launch.info.has_call()) return false;  // a root: its deployment may never spawn here
  const LaunchOptions& options = launch.options;
  ZygoteMode mode = ModeFor(options);
  if (mode == ZygoteMode::kOff) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (zygotes_.contains(deployment) || !MakeRoomLocked()) return false;
  }
  LaunchOptions own = options;
  own.stdin_fd = -1;  // a root's stdin pipe is the root's alone
  absl::StatusOr<std::unique_ptr<Zygote>> zygote = Zygote::Exec(own);
  if (!zygote.ok()) {
    LogWarning("node", "deployment %d: no zygote (%s); its launches execute", deployment, zygote.status().message());
    return false;
  }
  if (mode == ZygoteMode::kOn) (*zygote)->KeepSpares(base_);
  auto entry = std::make_shared<Entry>();
  entry->os_pid = (*zygote)->os_pid();
  {
    std::lock_guard<std::mutex> entry_lock(entry->mu);
    entry->zygote = *std::move(zygote);
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Another launch of the deployment may have started one meanwhile: this
  // one then goes (its socket closes and it ends).
  return zygotes_.emplace(deployment, std::move(entry)).second;
}

bool NodeZygotes::MakeRoomLocked() {
  if (zygotes_.size() < max_) return true;
  for (auto it = zygotes_.begin(); it != zygotes_.end(); ++it) {
    if (runs_(it->first)) continue;
    zygotes_.erase(it);  // it ends with its last user (a launch through it may hold it)
    return true;
  }
  return false;
}

void NodeZygotes::End(uint64_t deployment) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = zygotes_.find(deployment);
    if (it == zygotes_.end()) return;
    entry = std::move(it->second);
    zygotes_.erase(it);
  }
  // A launch through it still holds the entry: the zygote goes with its last user.
}

void NodeZygotes::EndAll() {
  std::map<uint64_t, std::shared_ptr<Entry>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(zygotes_);
  }
  std::vector<pollfd> ending;
  for (auto& [deployment, entry] : all) {
    std::lock_guard<std::mutex> lock(entry->mu);
    if (entry->zygote == nullptr) continue;
    int pidfd = entry->zygote->TakePidfd();
    entry->zygote.reset();  // its socket closes: it ends its spare, then itself
    if (pidfd >= 0) ending.push_back({pidfd, POLLIN, 0});
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kEndWaitMs);
  for (pollfd& p : ending) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) >= 0 || errno != EINTR) break;
    }
    close(p.fd);
  }
}

size_t NodeZygotes::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return zygotes_.size();
}

pid_t NodeZygotes::os_pid(uint64_t deployment) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = zygotes_.find(deployment);
  return it == zygotes_.end() ? 0 : it->second->os_pid;
}

}  // namespace constellation::daemon
