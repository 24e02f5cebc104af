#pragma once

// Reassembling a spawn request sent in chunks (pb::RequestChunk, for
// requests bigger than one packet), with a bound on its size. Used by the
// local bridge and the node agent, one RequestChunks per connection.
// Not thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "proto/local.pb.h"

namespace constellation::internal {

// The largest spawn request (arguments, argv and environment) accepted; the
// master's gRPC messages are capped at 64 MiB.
inline constexpr size_t kMaxSpawnRequest = 60 << 20;

class RequestChunks {
 public:
  enum class State { kPartial, kWhole, kTooBig, kMalformed };

  // Adds one chunk. kPartial until the last; then kWhole (`*whole` set), or
  // kTooBig (the request went over kMaxSpawnRequest: the rest was dropped as
  // it came), or kMalformed. After the last chunk it starts over.
  State Add(const pb::RequestChunk& chunk, pb::SpawnRequest* whole);

  // The refusal for a kTooBig request, answering `chunk`'s request id.
  static pb::SpawnReply TooBigReply(const pb::RequestChunk& chunk);

 private:
  std::string bytes_;
  bool too_big_ = false;
};

}  // namespace constellation::internal
