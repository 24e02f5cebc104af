#include "lib/process/request_chunks.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace constellation::internal {

RequestChunks::State RequestChunks::Add(const pb::RequestChunk& chunk, pb::SpawnRequest* whole) {
  if (!too_big_) bytes_ += chunk.data();
  if (bytes_.size() > kMaxSpawnRequest) {
    too_big_ = true;
    std::string().swap(bytes_);
  }
  if (!chunk.last()) return State::kPartial;
  std::string bytes = std::exchange(bytes_, {});
  if (std::exchange(too_big_, false)) return State::kTooBig;
  return whole->ParseFromString(bytes) ? State::kWhole : State::kMalformed;
}

pb::SpawnReply RequestChunks::TooBigReply(const pb::RequestChunk& chunk) {
  pb::SpawnReply refusal;
  refusal.set_id(chunk.id());
  refusal.set_code(static_cast<int>(absl::StatusCode::kInvalidArgument));
  refusal.set_message(
      absl::StrCat("spawn request (arguments, argv and environment) over the ", kMaxSpawnRequest >> 20, " MiB limit"));
  return refusal;
}

}  // namespace constellation::internal
