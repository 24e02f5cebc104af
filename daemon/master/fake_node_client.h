#pragma once

// FakeNodeClient: a node in memory, for the master's unit tests. It records
// every call, answers launches with fresh pids, and lets the test feed the
// Attach stream (Push, End) as a node daemon would. Failures are injected by
// setting the `*_error` fields.
//
// Thread-safe: the master's threads call it while the test drives it.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "daemon/master/node_client.h"

namespace constellation::daemon::master {

class FakeNodeClient final : public NodeClient {
 public:
  explicit FakeNodeClient(std::string addr, uint32_t ipv4 = 0x7f000001) : addr_(std::move(addr)), ipv4_(ipv4) {}

  const std::string& addr() const override { return addr_; }
  absl::StatusOr<pb::HasBinaryReply> HasBinary(const pb::BinaryId& binary) override;
  // Reads the source to its end (or error); stores the binary if the bytes hash to it.
  absl::Status Upload(const pb::BinaryId& binary, ChunkSource& source) override;
  // Records the path; answered with `adopt_error` (OK: the node has the binary).
  absl::Status Adopt(const pb::BinaryId& binary, const std::string& path) override;
  absl::StatusOr<Pid> Launch(const pb::LaunchRequest& request) override;
  absl::Status WriteStdin(const pb::StdinChunk& chunk) override;
  absl::Status Kill(const pb::KillRequest& request) override;
  absl::StatusOr<Resources> QueryResources(const pb::ResourcesQuery& query) override;
  absl::Status Ack(const pb::AckRequest& request) override;
  std::unique_ptr<AttachStream> Attach(const pb::AttachRequest& request) override;
  // Recorded; answered at once with `gone_error`, or held while `hold_gone` is set (a slow node).
  void Gone(const pb::GoneBatch& batch, std::function<void(absl::Status)> done) override;

  // --- The test's side ---
  // Queues a message for the current (or next) Attach stream.
  void Push(pb::NodeEvent event);
  // The hello every Attach starts with (queued at each Attach call).
  void SetHello(pb::NodeHello hello);
  // Ends the current Attach stream with `status` once its queue is read.
  void End(absl::Status status);
  // attach_error, while the master's threads may call Attach.
  void SetAttachError(absl::Status status);
  // Waits (bounded) until the current stream's queue is read and its reader
  // waits for more: everything pushed has been handled.
  bool WaitIdle(absl::Duration timeout = absl::Seconds(10));
  // Waits (bounded) until `predicate` holds over the fake's state; false on timeout.
  bool WaitFor(const std::function<bool()>& predicate, absl::Duration timeout = absl::Seconds(10));

  std::vector<pb::LaunchRequest> launches() const;
  std::vector<pb::KillRequest> kills() const;
  std::vector<pb::StdinChunk> stdin_chunks() const;
  std::vector<pb::AckRequest> acks() const;
  std::vector<pb::AttachRequest> attaches() const;
  std::set<std::string> binaries() const;
  int uploads() const;
  std::vector<std::string> adopted_paths() const;
  // Bytes the upload in progress has read so far (-1: none in progress).
  int64_t upload_progress() const;
  std::vector<pb::GoneBatch> gone_batches() const;
  // The pids of every ProcessGone received, in order, as "ip:port why" (why: exit, node_lost, no_process).
  std::vector<std::string> gone_pids() const;
  // Answers the Gone calls held (hold_gone) with `status`; returns how many.
  size_t ReleaseGone(absl::Status status = absl::OkStatus());
  // QueryResources calls answered.
  int queries() const;
  // Launch calls waiting while hold_launch is set (a node slow to answer).
  int held_launches() const;
  // Clears hold_launch: the held Launch calls answer.
  void ReleaseLaunches();

  std::string boot_id;        // HasBinaryReply.boot_id
  absl::Status adopt_error;   // what Adopt answers
  absl::Status launch_error;  // set before the call it should fail
  absl::Status attach_error;  // Attach streams end at once with it
  Resources query_answer{1 << 30, 1};
  std::atomic<bool> hold_gone{false};
  std::atomic<bool> hold_launch{false};  // Launch waits (at most 30 s) until ReleaseLaunches()
  absl::Status gone_error;               // set before the call it should fail

 private:
  struct Stream;
  class FakeStream;

  const std::string addr_;
  const uint32_t ipv4_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> binaries_;
  int uploads_ = 0;
  int64_t upload_progress_ = -1;
  std::vector<std::string> adopted_;
  uint16_t next_port_ = 20000;
  std::vector<pb::LaunchRequest> launches_;
  std::vector<pb::KillRequest> kills_;
  std::vector<pb::StdinChunk> stdin_;
  std::vector<pb::AckRequest> acks_;
  std::vector<pb::AttachRequest> attaches_;
  std::vector<pb::GoneBatch> gone_;
  std::vector<std::function<void(absl::Status)>> held_gone_;
  pb::NodeHello hello_;
  std::shared_ptr<Stream> stream_;  // the current Attach
  int waiting_readers_ = 0;
  int held_launches_ = 0;
  int queries_ = 0;
};

}  // namespace constellation::daemon::master
