#include "daemon/master/event_order.h"

#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::FromProto;

std::vector<EventOrder::Item> EventOrder::Announce(const Pid& pid) {
  std::vector<Item> out;
  Release(pid, &out);
  return out;
}

std::vector<EventOrder::Item> EventOrder::Deliver(Item item, bool* refused) {
  std::vector<Item> out;
  if (refused != nullptr) *refused = false;
  absl::StatusOr<Pid> pid = FromProto(item.event.pid());
  if (!pid.ok()) return out;
  if (!announced_.contains(*pid)) {
    if (held_count_ >= kMaxHeld) {
      if (refused != nullptr) *refused = true;
      return out;
    }
    held_[*pid].push_back(std::move(item));
    ++held_count_;
    return out;
  }
  Ready(std::move(item), &out);
  return out;
}

std::vector<EventOrder::Item> EventOrder::Forget(const Pid& pid) {
  auto it = held_.find(pid);
  if (it == held_.end()) return {};
  std::vector<Item> dropped = std::move(it->second);
  held_count_ -= dropped.size();
  held_.erase(it);
  return dropped;
}

std::vector<EventOrder::Item> EventOrder::ForgetAll() {
  std::vector<Item> dropped;
  for (auto& [pid, items] : held_) {
    for (Item& item : items) dropped.push_back(std::move(item));
  }
  held_.clear();
  held_count_ = 0;
  return dropped;
}

void EventOrder::Release(const Pid& pid, std::vector<Item>* out) {
  if (!announced_.insert(pid).second) return;
  auto it = held_.find(pid);
  if (it == held_.end()) return;
  std::vector<Item> items = std::move(it->second);
  held_count_ -= items.size();
  held_.erase(it);
  for (Item& item : items) Ready(std::move(item), out);
}

void EventOrder::Ready(Item item, std::vector<Item>* out) {
  std::optional<Pid> child;
  if (item.event.has_spawn()) {
    absl::StatusOr<Pid> named = FromProto(item.event.spawn().child());
    if (named.ok()) child = *named;
  }
  out->push_back(std::move(item));
  if (child) Release(*child, out);  // after its spawn line
}

}  // namespace constellation::daemon::master
