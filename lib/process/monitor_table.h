#pragma once

// MonitorTable: this process's monitors and links (lib/process/monitors.h),
// and every verdict it has received. A verdict (pb::ProcessGone, from the
// bridge or the node agent through the ControlLink) is kept for the life of
// the process, so a monitor of a pid already reported (a second monitor, or a
// peer of the data plane's) is ready at once, without asking again. The
// first monitor of a pid nobody has watched yet asks the system (WatchFn);
// the data plane's watches go through Watch, so a pid is asked about once.
//
// A verdict on a linked pid that is abnormal (Down::abnormal) while exits are
// not trapped calls TerminateFn instead of setting the slots (in a process:
// TerminateForLink, which does not return).
//
// Memory: one Down per pid this process watched (a peer or a monitor): the
// system's own tables keep as much. Slots of monitors dropped before their
// verdict are pruned on the next Add of the same pid, and go with the verdict.
//
// Ownership: one per process (InstallMonitorTable, never destroyed); tests
// make their own. Threading: thread-safe. OnGone runs on the data plane's
// loop thread; WatchFn and TerminateFn are called without the table's lock.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "lib/core/pid.h"
#include "lib/net/mutex.h"
#include "lib/process/down.h"
#include "lib/process/monitor_slot.h"
#include "proto/process.pb.h"

namespace constellation::process_internal {

class MonitorTable {
 public:
  // Asks the system to report `pid`'s end once (ControlLink::Watch).
  using WatchFn = std::function<void(const Pid&)>;
  // A linked process ended abnormally and exits are not trapped.
  using TerminateFn = std::function<void(const Down&)>;

  MonitorTable(WatchFn watch, TerminateFn terminate) : watch_(std::move(watch)), terminate_(std::move(terminate)) {}
  MonitorTable(const MonitorTable&) = delete;
  MonitorTable& operator=(const MonitorTable&) = delete;

  // A slot that gets `pid`'s Down: at once if its verdict is known (the null
  // Pid: NoProcess at once, never asked), else when it arrives. `link`: the
  // pid is linked from now on (for the life of this process).
  std::shared_ptr<MonitorSlot> Add(const Pid& pid, bool link);
  // Makes sure the system reports `pid`'s end (asks once).
  void Watch(const Pid& pid);
  // A verdict. The first one on a pid stands; later ones are ignored.
  void OnGone(const Down& down);
  // Whether a linked process's abnormal end comes as a Down (true) or
  // terminates this process (false, the default).
  void SetTrapExits(bool on);
  // The verdict kept on `pid`, if any.
  std::optional<Down> Known(const Pid& pid) const;

 private:
  struct Waiting {
    std::vector<std::weak_ptr<MonitorSlot>> slots;  // a dropped Monitor's slot expires
  };
  // Delivers `down` to `slots`, or terminates for a link.
  void Deliver(const Down& down, bool linked, bool trapped, const std::vector<std::weak_ptr<MonitorSlot>>& slots);

  const WatchFn watch_;
  const TerminateFn terminate_;
  mutable net::Mutex mu_;
  absl::flat_hash_map<Pid, Down> gone_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Pid, Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Pid> watched_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Pid> linked_ ABSL_GUARDED_BY(mu_);
  bool trap_exits_ ABSL_GUARDED_BY(mu_) = false;
};

// The Down a verdict means.
Down DownFromGone(const Pid& pid, const pb::ProcessGone& gone);

// What a process terminated for a link says on stderr (one line, with '\n').
std::string LinkTerminationLine(const Down& down);
// Writes that line and exits with kLinkedExitCode at once (_exit: no exit
// flush, no atexit handlers; this process is failing because of another's failure).
[[noreturn]] void TerminateForLink(const Down& down);

// The process-wide table: made by init() (runtime.cc), never destroyed.
// DefaultMonitorTable aborts with a message before that.
void InstallMonitorTable(MonitorTable::WatchFn watch);
MonitorTable& DefaultMonitorTable();

}  // namespace constellation::process_internal
