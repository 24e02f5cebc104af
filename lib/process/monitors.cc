#include "lib/process/monitors.h"

#include <cstdio>
#include <cstdlib>

#include "lib/process/monitor_slot.h"
#include "lib/process/monitor_table.h"
#include "lib/process/runtime_state.h"

namespace constellation {

using process_internal::DefaultMonitorTable;
using process_internal::MonitorSlot;

namespace {

// Also: init() must have run.
void RefuseSelf(const Pid& target, const char* call) {
  process_internal::RequireInit(call);
  if (target != process_internal::runtime().self) return;
  fprintf(stderr, "constellation: %s of pid(): a process cannot wait for its own end\n", call);
  fflush(stderr);
  abort();
}

}  // namespace

namespace async_internal {

DownWait::DownWait(std::shared_ptr<MonitorSlot> slot) : slot_(std::move(slot)) {}
DownWait::~DownWait() { Cancel(); }

bool DownWait::TryComplete() {
  down_ = slot_->Get();
  return down_.has_value();
}

void DownWait::Subscribe(bool add) { slot_->Watch(this, add); }

}  // namespace async_internal

Monitor::Monitor(Pid pid, std::shared_ptr<MonitorSlot> slot) : pid_(pid), slot_(std::move(slot)) {}

const MonitorSlot& Monitor::slot() const {
  if (slot_ == nullptr) {
    fprintf(stderr, "constellation: a moved-from Monitor was used\n");
    abort();
  }
  return *slot_;
}

Down Monitor::wait() const { return *slot().WaitUntil(absl::InfiniteFuture()); }

std::optional<Down> Monitor::try_wait() const { return slot().Get(); }

absl::StatusOr<Down> Monitor::wait_for(absl::Duration timeout) const {
  std::optional<Down> down = slot().WaitUntil(absl::Now() + timeout);
  if (!down.has_value()) {
    return absl::DeadlineExceededError("monitor of " + pid_.to_string() + ": the process is still there");
  }
  return *std::move(down);
}

async_internal::DownWait Monitor::async_wait() const {
  slot();
  return async_internal::DownWait(slot_);
}

bool Monitor::TryDown(MonitorSlot& slot, std::optional<Down>* down) {
  *down = slot.Get();
  return down->has_value();
}

void Monitor::WatchDown(MonitorSlot& slot, net::Waiter* waiter, bool add) { slot.Watch(waiter, add); }

Monitor monitor(Pid pid) {
  RefuseSelf(pid, "monitor()");
  return Monitor(pid, DefaultMonitorTable().Add(pid, /*link=*/false));
}

Monitor link(Pid pid) {
  RefuseSelf(pid, "link()");
  return Monitor(pid, DefaultMonitorTable().Add(pid, /*link=*/true));
}

void trap_exits(bool on) {
  process_internal::RequireInit("trap_exits()");
  DefaultMonitorTable().SetTrapExits(on);
}

}  // namespace constellation
