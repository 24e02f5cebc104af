#include "daemon/node_events.h"

#include <sys/random.h>

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "daemon/log/log.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon {

using internal::FromProto;

std::string NewIncarnation() {
  char bytes[16];
  if (getrandom(bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) {
    LogError("node", "getrandom failed");
    abort();
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
}

EventBuffer::EventBuffer(std::string incarnation, uint64_t capacity)
    : incarnation_(std::move(incarnation)), capacity_(capacity) {}

void EventBuffer::Launched(const Pid& pid, pb::RunningProcess process) { processes_[pid].process = std::move(process); }

void EventBuffer::Forget(const Pid& pid) { processes_.erase(pid); }

bool EventBuffer::MayDrop(const pb::ProcessEvent& event) { return event.has_output() && !event.output().eof(); }

uint64_t EventBuffer::Push(uint64_t deployment, const pb::ProcessEvent& event) {
  pb::NodeEvent out;
  out.set_deployment(deployment);
  *out.mutable_event() = event;
  uint64_t size = out.ByteSizeLong() + kPerEventOverhead;
  if (MayDrop(event) && used_ + size > capacity_) {
    dropped_[deployment] += event.output().data().size();
    return 0;
  }
  if (auto it = dropped_.find(deployment); it != dropped_.end()) {
    out.set_dropped_bytes(it->second);
    dropped_.erase(it);
  }
  uint64_t seq = Keep(std::move(out));
  if (event.has_exit()) {
    absl::StatusOr<Pid> pid = FromProto(event.pid());
    auto it = pid.ok() ? processes_.find(*pid) : processes_.end();
    if (it != processes_.end()) {
      it->second.process.set_exited(true);
      it->second.exit_seq = seq;
    }
  }
  return seq;
}

uint64_t EventBuffer::Keep(pb::NodeEvent event) {
  event.set_seq(++last_seq_);
  uint64_t size = event.ByteSizeLong() + kPerEventOverhead;
  used_ += size;
  sizes_.push_back(size);
  events_.push_back(std::move(event));
  return last_seq_;
}

bool EventBuffer::Ack(const std::string& incarnation, uint64_t seq) {
  if (incarnation != incarnation_) return false;
  seq = std::min(seq, last_seq_);
  if (seq <= acked_) return false;
  acked_ = seq;
  while (!events_.empty() && events_.front().seq() <= seq) {
    used_ -= sizes_.front();
    sizes_.pop_front();
    events_.pop_front();
  }
  for (auto it = processes_.begin(); it != processes_.end();) {
    it = it->second.exit_seq != 0 && it->second.exit_seq <= seq ? processes_.erase(it) : std::next(it);
  }
  // Room again: say what was lost now, not with the deployment's next output.
  bool added = false;
  for (auto it = dropped_.begin(); it != dropped_.end();) {
    pb::NodeEvent marker;
    marker.set_deployment(it->first);
    marker.set_dropped_bytes(it->second);
    if (used_ + marker.ByteSizeLong() + kPerEventOverhead > capacity_) break;
    Keep(std::move(marker));
    added = true;
    it = dropped_.erase(it);
  }
  return added;
}

uint64_t EventBuffer::Resume(const std::string& incarnation, uint64_t resume_after) {
  if (incarnation != incarnation_) return 0;
  Ack(incarnation, resume_after);
  return std::min(resume_after, last_seq_);
}

const pb::NodeEvent* EventBuffer::Next(uint64_t after) const {
  if (events_.empty()) return nullptr;
  uint64_t first = events_.front().seq();
  uint64_t want = std::max(after + 1, first);
  if (want - first >= events_.size()) return nullptr;
  return &events_[want - first];
}

pb::NodeHello EventBuffer::Hello() const {
  pb::NodeHello hello;
  hello.set_incarnation(incarnation_);
  for (const auto& [pid, process] : processes_) *hello.add_processes() = process.process;
  return hello;
}

}  // namespace constellation::daemon
