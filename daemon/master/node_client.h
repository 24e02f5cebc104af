#pragma once

// NodeClient: the master's calls to one node daemon (proto/cluster.proto's
// Node service), behind an interface so that placement, attach and job logic
// are tested with FakeNodeClient (fake_node_client.h) and no server.
//
// Every call is bounded (a deadline) except Attach's stream, which lasts as
// long as the node is attached; AttachStream::Cancel ends it from any thread.
//
// Thread-safe: calls may come from any thread at once.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "proto/cluster.pb.h"

namespace constellation::daemon::master {

// One Attach call: the node's events, the hello first.
class AttachStream {
 public:
  virtual ~AttachStream() = default;
  // The next message; false once the stream has ended.
  virtual bool Read(pb::NodeEvent* event) = 0;
  // Why it ended (after Read returned false).
  virtual absl::Status Finish() = 0;
  // Ends the stream: a blocked Read returns false. Any thread, any time.
  virtual void Cancel() = 0;
};

// Where an upload's bytes come from: a stored file, or a binary that is
// still arriving (IncomingBinaries). Used by one thread at a time.
class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  // Copies the next bytes (at most `max`) into `buf`; 0 once all were read.
  // An error abandons the upload (the node keeps nothing of it).
  virtual absl::StatusOr<size_t> Read(char* buf, size_t max) = 0;
};

class NodeClient {
 public:
  virtual ~NodeClient() = default;
  virtual const std::string& addr() const = 0;

  // Whether the node has the binary, and the node's boot id.
  virtual absl::StatusOr<pb::HasBinaryReply> HasBinary(const pb::BinaryId& binary) = 0;
  // Streams `binary`'s bytes from `source` as they come; the node stores them
  // once they hash to `binary`.
  virtual absl::Status Upload(const pb::BinaryId& binary, ChunkSource& source) = 0;
  // Asks a node of this machine to link in the master's stored copy at `path`
  // (Node.Adopt); FAILED_PRECONDITION when it cannot.
  virtual absl::Status Adopt(const pb::BinaryId& binary, const std::string& path) = 0;
  virtual absl::StatusOr<Pid> Launch(const pb::LaunchRequest& request) = 0;
  virtual absl::Status WriteStdin(const pb::StdinChunk& chunk) = 0;
  virtual absl::Status Kill(const pb::KillRequest& request) = 0;
  virtual absl::StatusOr<Resources> QueryResources(const pb::ResourcesQuery& query) = 0;
  virtual absl::Status Ack(const pb::AckRequest& request) = 0;
  virtual std::unique_ptr<AttachStream> Attach(const pb::AttachRequest& request) = 0;
  // Node.Gone, asynchronous (the master's verdicts must not wait on a slow
  // node): `done` is called once, on another thread or (for a call that fails
  // at once) on the caller's; the caller must not hold a lock `done` takes.
  // The client waits for its calls' `done` before it is destroyed.
  virtual void Gone(const pb::GoneBatch& batch, std::function<void(absl::Status)> done) = 0;
};

}  // namespace constellation::daemon::master
