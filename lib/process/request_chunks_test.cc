#include "lib/process/request_chunks.h"

#include "gtest/gtest.h"

namespace constellation::internal {
namespace {

pb::RequestChunk Chunk(const std::string& data, bool last, uint64_t id = 7) {
  pb::RequestChunk chunk;
  chunk.set_data(data);
  chunk.set_last(last);
  chunk.set_id(id);
  return chunk;
}

TEST(RequestChunksTest, ReassemblesAndStartsOver) {
  pb::SpawnRequest request;
  request.set_id(7);
  request.add_argv(std::string(1000, 'a'));
  std::string bytes = request.SerializeAsString();
  RequestChunks chunks;
  pb::SpawnRequest whole;
  EXPECT_EQ(chunks.Add(Chunk(bytes.substr(0, 500), false), &whole), RequestChunks::State::kPartial);
  EXPECT_EQ(chunks.Add(Chunk(bytes.substr(500), true), &whole), RequestChunks::State::kWhole);
  EXPECT_EQ(whole.argv(0), request.argv(0));
  EXPECT_EQ(chunks.Add(Chunk(bytes, true), &whole), RequestChunks::State::kWhole) << "a second request";
}

TEST(RequestChunksTest, OverTheLimitIsRefusedOnceWhole) {
  RequestChunks chunks;
  pb::SpawnRequest whole;
  std::string piece(8 << 20, 'x');
  for (size_t sent = 0; sent <= kMaxSpawnRequest; sent += piece.size()) {
    EXPECT_EQ(chunks.Add(Chunk(piece, false), &whole), RequestChunks::State::kPartial);
  }
  EXPECT_EQ(chunks.Add(Chunk(piece, true, 42), &whole), RequestChunks::State::kTooBig);
  pb::SpawnReply reply = RequestChunks::TooBigReply(Chunk("", true, 42));
  EXPECT_EQ(reply.id(), 42u);
  EXPECT_EQ(reply.code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(reply.message().find("60 MiB limit"), std::string::npos) << reply.message();
  EXPECT_EQ(chunks.Add(Chunk("", true), &whole), RequestChunks::State::kWhole) << "starts over after a refusal";
}

TEST(RequestChunksTest, GarbageIsMalformed) {
  RequestChunks chunks;
  pb::SpawnRequest whole;
  EXPECT_EQ(chunks.Add(Chunk("\xff\xff\xff\xff", true), &whole), RequestChunks::State::kMalformed);
}

}  // namespace
}  // namespace constellation::internal
