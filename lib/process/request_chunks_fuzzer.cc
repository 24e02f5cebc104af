// libFuzzer target for spawn-request reassembly (lib/process/request_chunks.h):
// one RequestChunks fed a fuzzed sequence of chunks, as one connection of the
// local bridge or the node agent would be. The input is a sequence of
//   flags u8 (bit 0: `last`), id u8, length u8, then that many data bytes.
// Against a model (the bytes since the last `last`): kPartial exactly for a
// chunk that is not last; otherwise kWhole with the request those bytes parse
// to, or kMalformed when they do not parse. Inputs are far below the 60 MiB
// limit, so kTooBig is never right here; the limit itself is covered by
// request_chunks_test (reaching it takes 60 MiB of fresh memory per run, which
// under ASan in a VM made the fuzzer run once a second).
// Run with tools/fuzz.sh request_chunks_fuzzer SECONDS; see docs/fuzzing.md.

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lib/process/request_chunks.h"
#include "tools/fuzz/seeds.h"

namespace constellation {
namespace {

using internal::RequestChunks;

void Feed(const uint8_t* data, size_t size) {
  RequestChunks chunks;
  std::string model;  // the bytes since the last `last`
  size_t at = 0;
  auto byte = [&] { return at < size ? data[at++] : uint8_t{0}; };
  while (at < size) {
    uint8_t flags = byte();
    pb::RequestChunk chunk;
    chunk.set_last(flags & 1);
    chunk.set_id(byte());
    size_t length = std::min<size_t>(byte(), size - at);
    chunk.set_data(std::string(reinterpret_cast<const char*>(data + at), length));
    at += length;
    model += chunk.data();

    pb::SpawnRequest whole;
    RequestChunks::State state = chunks.Add(chunk, &whole);
    if (!chunk.last()) {
      if (state != RequestChunks::State::kPartial) fuzz::Violated("a chunk that is not last was not kPartial");
      continue;
    }
    pb::SpawnRequest expected;
    bool parses = expected.ParseFromString(model);
    if (state != (parses ? RequestChunks::State::kWhole : RequestChunks::State::kMalformed)) {
      fuzz::Violated("a whole request was not kWhole or kMalformed as its bytes parse");
    }
    if (parses && !google::protobuf::util::MessageDifferencer::Equals(whole, expected)) {
      fuzz::Violated("the reassembled request differs from its bytes");
    }
    model.clear();
  }
}

// Splits `bytes` into chunks of at most `piece` bytes, the last one marked.
std::string Chunked(const std::string& bytes, size_t piece, uint8_t id) {
  std::string out;
  for (size_t at = 0; at == 0 || at < bytes.size(); at += piece) {
    std::string data = bytes.substr(at, piece);
    bool last = at + piece >= bytes.size();
    out += static_cast<char>(last ? 1 : 0);
    out += static_cast<char>(id);
    out += static_cast<char>(data.size());
    out += data;
  }
  return out;
}

}  // namespace

std::vector<fuzz::Seed> fuzz::Seeds() {
  pb::SpawnRequest request;
  request.set_id(7);
  request.set_wait(true);
  request.mutable_call()->set_trampoline(4096);
  request.add_argv("/bin/program");
  request.add_argv("--flag");
  request.add_env("PATH=/usr/bin");
  request.mutable_resources()->set_mem(100 << 20);
  std::string bytes = request.SerializeAsString();
  return {
      {"one-chunk", Chunked(bytes, 255, 1)},
      {"three-chunks", Chunked(bytes, 20, 2)},
      {"two-requests", Chunked(bytes, 30, 3) + Chunked(bytes, 255, 4)},
      {"malformed", Chunked(std::string("\x0a\xff\xff", 3), 255, 5)},
      {"empty-then-whole", Chunked("", 1, 6) + Chunked(bytes, 64, 7)},
  };
}

}  // namespace constellation

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // a bad message is expected, not news
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constellation::Feed(data, size);
  return 0;
}
