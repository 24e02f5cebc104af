#include "lib/process/monitor_table.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace constellation::process_internal {

std::shared_ptr<MonitorSlot> MonitorTable::Add(const Pid& pid, bool link) {
  auto slot = std::make_shared<MonitorSlot>();
  std::optional<Down> known;
  bool ask = false, trapped = false;
  if (pid.is_null()) {
    known = Down{pid, NoProcess{}, "the null Pid names no process"};
  }
  {
    net::MutexLock lock(&mu_);
    trapped = trap_exits_;
    if (link) linked_.insert(pid);
    if (!known.has_value()) {
      auto it = gone_.find(pid);
      if (it != gone_.end()) known = it->second;
    }
    if (!known.has_value()) {
      std::vector<std::weak_ptr<MonitorSlot>>& slots = waiting_[pid].slots;
      std::erase_if(slots, [](const std::weak_ptr<MonitorSlot>& s) { return s.expired(); });
      slots.push_back(slot);
      ask = watched_.insert(pid).second;
    }
  }
  if (known.has_value()) Deliver(*known, link, trapped, {slot});
  if (ask) watch_(pid);
  return slot;
}

void MonitorTable::Watch(const Pid& pid) {
  bool ask;
  {
    net::MutexLock lock(&mu_);
    ask = !gone_.contains(pid) && watched_.insert(pid).second;
  }
  if (ask) watch_(pid);
}

void MonitorTable::OnGone(const Down& down) {
  std::vector<std::weak_ptr<MonitorSlot>> slots;
  bool linked, trapped;
  {
    net::MutexLock lock(&mu_);
    if (!gone_.emplace(down.pid, down).second) return;  // the first verdict stands
    watched_.erase(down.pid);
    auto it = waiting_.find(down.pid);
    if (it != waiting_.end()) {
      slots = std::move(it->second.slots);
      waiting_.erase(it);
    }
    linked = linked_.contains(down.pid);
    trapped = trap_exits_;
  }
  Deliver(down, linked, trapped, slots);
}

void MonitorTable::Deliver(const Down& down, bool linked, bool trapped,
                           const std::vector<std::weak_ptr<MonitorSlot>>& slots) {
  if (linked && !trapped && down.abnormal()) terminate_(down);  // in a process: does not return
  for (const std::weak_ptr<MonitorSlot>& weak : slots) {
    if (std::shared_ptr<MonitorSlot> slot = weak.lock()) slot->Set(down);
  }
}

void MonitorTable::SetTrapExits(bool on) {
  net::MutexLock lock(&mu_);
  trap_exits_ = on;
}

std::optional<Down> MonitorTable::Known(const Pid& pid) const {
  net::MutexLock lock(&mu_);
  auto it = gone_.find(pid);
  if (it == gone_.end()) return std::nullopt;
  return it->second;
}

Down DownFromGone(const Pid& pid, const pb::ProcessGone& gone) {
  const pb::ExitEvent& exit = gone.exit();
  Down down{pid, Exited{exit.code()}, exit.error()};
  if (gone.no_process()) {
    down.reason = NoProcess{};
  } else if (gone.node_lost()) {
    down.reason = NodeLost{};
  } else if (exit.memory_exceeded()) {
    down.reason = OutOfMemory{};
  } else if (exit.status_case() == pb::ExitEvent::kSignal) {
    down.reason = Signaled{exit.signal()};
  }
  return down;
}

std::string LinkTerminationLine(const Down& down) {
  return "constellation: terminating: linked " + down.to_string() +
         " (call trap_exits(true) to receive it as a Down instead)\n";
}

void TerminateForLink(const Down& down) {
  // Runs on the data plane's loop thread while user threads run: write(2)
  // and _exit, no stdio lock nor exit handler that a user thread may hold.
  const std::string line = LinkTerminationLine(down);
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  _exit(kLinkedExitCode);
}

namespace {
MonitorTable* g_table = nullptr;  // set once by init(), before any thread starts
}  // namespace

void InstallMonitorTable(MonitorTable::WatchFn watch) {
  g_table = new MonitorTable(std::move(watch), [](const Down& down) { TerminateForLink(down); });
}

MonitorTable& DefaultMonitorTable() {
  if (g_table == nullptr) {
    fprintf(stderr, "constellation: monitor() or link() was called before init()\n");
    abort();
  }
  return *g_table;
}

}  // namespace constellation::process_internal
