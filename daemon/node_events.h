#pragma once

// EventBuffer: what a node daemon keeps for its master. Every event of the
// node's processes gets the next sequence number (1, 2, ... per incarnation,
// no gaps) and stays here until the master acknowledges it (Ack), so a master
// that restarts, or a stream that breaks, loses none: the next Attach replays
// what was not acknowledged (Next). Beside the events it keeps the node's
// inventory: every process launched here whose exit the master has not
// acknowledged (Hello).
//
// Bounded: events take at most `capacity` bytes (their encoded size plus
// kPerEventOverhead), except spawn and exit events and the end of an output
// stream (eof), which are never dropped (there is one of each per process,
// and the master needs them to account for its processes). An output event
// that does not fit is dropped; the bytes lost are counted per deployment and
// reported in `dropped_bytes` of that deployment's next kept event, or of a
// marker (a NodeEvent with no `event`) added when an Ack makes room.
//
// Thread-compatible: the caller serializes every call (NodeService holds its
// mutex). No I/O, no clock.

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "lib/core/pid.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon {

// A new random 128-bit incarnation, as 32 lower-case hex digits.
std::string NewIncarnation();

class EventBuffer {
 public:
  // What an event is charged beyond its encoded size (the message objects).
  static constexpr uint64_t kPerEventOverhead = 256;

  EventBuffer(std::string incarnation, uint64_t capacity);
  EventBuffer(const EventBuffer&) = delete;
  EventBuffer& operator=(const EventBuffer&) = delete;

  const std::string& incarnation() const { return incarnation_; }

  // A process is launched: it is in the inventory until its exit is acked.
  // `process.pid` must be `pid`. Forget() undoes it (the launch failed).
  void Launched(const Pid& pid, pb::RunningProcess process);
  void Forget(const Pid& pid);

  // Keeps `event` of `deployment` with the next sequence number and returns
  // it; 0 if it was dropped (output that does not fit).
  uint64_t Push(uint64_t deployment, const pb::ProcessEvent& event);

  // The master has stored everything up to `seq` of `incarnation`: drops
  // those events, and the processes whose exit is among them. Ignored for
  // another incarnation or a seq not above the last ack (acks only grow); a
  // seq beyond the last event counts as the last. Returns whether it added
  // markers for output dropped before (then Next() has more to send).
  bool Ack(const std::string& incarnation, uint64_t seq);

  // Where a new Attach starts: the seq after which it sends. When
  // `incarnation` is this one, the master holds everything up to
  // `resume_after` (it is acked); otherwise it is sent every event held.
  uint64_t Resume(const std::string& incarnation, uint64_t resume_after);

  // The first event held with a seq above `after`; null if there is none.
  // Valid until the next non-const call.
  const pb::NodeEvent* Next(uint64_t after) const;

  // The first message of an Attach: the incarnation and the inventory.
  pb::NodeHello Hello() const;

  uint64_t last_seq() const { return last_seq_; }
  uint64_t acked() const { return acked_; }
  size_t size() const { return events_.size(); }
  uint64_t used_bytes() const { return used_; }
  // Output bytes dropped and not yet reported, per deployment.
  const std::map<uint64_t, uint64_t>& unreported_drops() const { return dropped_; }

 private:
  struct Process {
    pb::RunningProcess process;
    uint64_t exit_seq = 0;  // 0: not exited
  };
  static bool MayDrop(const pb::ProcessEvent& event);
  uint64_t Keep(pb::NodeEvent event);

  const std::string incarnation_;
  const uint64_t capacity_;
  std::deque<pb::NodeEvent> events_;  // seqs acked_ + 1 ... last_seq_
  std::deque<uint64_t> sizes_;        // what each of events_ is charged
  uint64_t used_ = 0;
  uint64_t last_seq_ = 0;
  uint64_t acked_ = 0;
  std::map<uint64_t, uint64_t> dropped_;  // deployment -> output bytes dropped, unreported
  std::map<Pid, Process> processes_;
};

}  // namespace constellation::daemon
