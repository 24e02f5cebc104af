#pragma once

// EventOrder: one job's events in an order that makes sense to a reader:
// nothing of a process before the spawn line that names it. A process's
// events (its own spawn lines included) are held until it is announced;
// announcing it releases them, and a spawn line released announces its
// child in turn. The root is announced directly (it has no spawn line).
//
// I/O-free and not thread-safe: the job manager calls it under its lock.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/core/pid.h"
#include "proto/process.pb.h"

namespace constellation::daemon::master {

class EventOrder {
 public:
  struct Item {
    pb::ProcessEvent event;
    std::string node;                  // the node it came from ("" if the master made it)
    std::string incarnation;           // of that node
    std::optional<uint64_t> node_seq;  // its seq in that node's stream
  };

  // At most this many events are held per job (a process whose launch never
  // completes must not grow the master); past it, new ones are refused.
  static constexpr size_t kMaxHeld = 100'000;

  // Announces `pid`; returns what that releases, in order.
  std::vector<Item> Announce(const Pid& pid);
  // Returns the events ready now, in order: `item` and what it releases, or
  // nothing if it is held. `refused` (if given) is set when the bound refused it.
  std::vector<Item> Deliver(Item item, bool* refused = nullptr);
  // Drops what is held for a process that will never be announced.
  std::vector<Item> Forget(const Pid& pid);
  // Drops everything held (the job is over).
  std::vector<Item> ForgetAll();

  bool IsAnnounced(const Pid& pid) const { return announced_.contains(pid); }
  size_t held() const { return held_count_; }

 private:
  void Release(const Pid& pid, std::vector<Item>* out);
  void Ready(Item item, std::vector<Item>* out);

  std::set<Pid> announced_;
  std::map<Pid, std::vector<Item>> held_;
  size_t held_count_ = 0;
};

}  // namespace constellation::daemon::master
