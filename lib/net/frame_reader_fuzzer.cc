// libFuzzer target for FrameReader (lib/net/frame_reader.h) as a Peer drives
// it: a stream of frames, big and small, of every kind, written to a socket
// in pieces of a fuzzed size, read with a fuzzed limit per read, data frames
// refused now and then (a full queue), and each frame's buffer taken by its
// receiver, kept, or swapped for a recycled one of another size. Whatever
// the reads' split points and the reader's guesses after big frames
// (ReadHeaderAndGuess), every frame must come out whole, in order and once,
// and a bad header must end the stream exactly where it lies.
// Run with tools/fuzz.sh frame_reader_fuzzer SECONDS; see docs/fuzzing.md.

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lib/net/frame.h"
#include "lib/net/frame_reader.h"
#include "tools/fuzz/seeds.h"

namespace constellation::net {
namespace {

using fuzz::Violated;

struct Frame {
  FrameHeader header;
  std::string payload;
};

// The input, read as a script (see Seeds for examples).
struct Script {
  size_t read_max = SIZE_MAX;  // the most one ReadSome may read
  size_t chunk = 1;            // bytes written to the socket at a time
  uint32_t refusals = 0;       // bit i: the i-th data header's first Parse is refused
  uint32_t buffers = 0;        // 2 bits per frame: keep, take, recycled small, recycled big
  std::vector<Frame> frames;
  bool bad_tail = false;  // a bad header follows the frames
};

constexpr size_t kReadMax[] = {SIZE_MAX, 1, 7, 24, 25, 4096, 16 << 10, (64 << 10) + 24};
constexpr size_t kChunk[] = {1, 13, 24, 100, 4096, 40 << 10, 1 << 20};
// The stream's bound: smaller with tiny reads or writes, so that an input stays fast.
constexpr size_t kMaxStream = 1 << 20;
constexpr size_t kMaxStreamTinyReads = 64 << 10;
constexpr size_t kRecycledBig = (300 << 10) + 5;

Script Parse(const uint8_t* data, size_t size) {
  Script script;
  if (size < 7) return script;
  script.read_max = kReadMax[data[0] % 8];
  script.chunk = kChunk[data[1] % 7];
  std::memcpy(&script.refusals, data + 2, 4);
  script.buffers = data[6];
  const size_t max_stream = script.read_max < 4096 || script.chunk < 4096 ? kMaxStreamTinyReads : kMaxStream;
  size_t total = 0;
  // Each frame: kind byte, 16-bit length, fill byte. The kind byte's low
  // nibble is the kind (0 and 1 data, 2 to 5 the others, 6 a bad header),
  // its high one scales the length (x1, x16, x256), so big frames come from
  // small inputs.
  for (size_t at = 7; at + 4 <= size; at += 4) {
    const uint8_t kind = (data[at] & 0x0f) % 7;
    if (kind == 6) {
      script.bad_tail = true;
      break;
    }
    uint64_t length = data[at + 1] | (uint64_t{data[at + 2]} << 8);
    length <<= 4 * ((data[at] >> 4) % 3);
    Frame frame;
    frame.header.kind = kind < 2 ? FrameKind::kData : static_cast<FrameKind>(kind);
    if (frame.header.kind == FrameKind::kOpen) length %= kMaxTypeName + 1;
    if (frame.header.kind != FrameKind::kData && frame.header.kind != FrameKind::kOpen) length = 0;
    if (total + kFrameHeaderSize + length > max_stream) break;
    total += kFrameHeaderSize + length;
    frame.header.fingerprint = at;
    frame.header.length = length;
    frame.payload.assign(length, static_cast<char>(data[at + 3]));
    if (length > 0) frame.payload[length - 1] = static_cast<char>(at);  // the end shows a shifted frame
    script.frames.push_back(std::move(frame));
  }
  return script;
}

std::string Stream(const Script& script) {
  std::string stream;
  for (const Frame& frame : script.frames) {
    char header[kFrameHeaderSize];
    EncodeFrameHeader(frame.header, header);
    stream.append(header, kFrameHeaderSize);
    stream += frame.payload;
  }
  if (script.bad_tail) stream += std::string(kFrameHeaderSize, '\x7f');  // kind 0x7f: bad
  return stream;
}

// What a Peer does with a frame's buffer once it has the frame.
void HandOver(FrameReader* reader, uint32_t how) {
  std::string* payload = reader->payload();
  if (how == 1) {
    std::string taken;
    taken.swap(*payload);  // a receiver took it
  } else if (how == 2) {
    std::string recycled(100, 'r');  // a queue slot's small buffer
    payload->swap(recycled);
  } else if (how == 3) {
    std::string recycled(kRecycledBig, 'R');  // a spare big buffer, stale bytes and all
    payload->swap(recycled);
  }
}

void Run(const Script& script) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return;
  const std::string stream = Stream(script);
  FrameReader reader;
  size_t written = 0, next = 0, data_headers = 0, handed = 0;
  uint64_t largest = kRecycledBig;  // the recycled big buffer HandOver may give
  bool bad = false, refused_last = false;
  // The writer: as much as the socket takes, a chunk at a time; then EOF.
  auto write_some = [&] {
    while (written < stream.size()) {
      ssize_t n = write(fds[1], stream.data() + written, std::min(script.chunk, stream.size() - written));
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    if (written == stream.size() && fds[1] >= 0) {
      close(fds[1]);
      fds[1] = -1;
    }
  };
  while (!bad) {
    write_some();
    // The reader: one read, then every frame it completes.
    FrameReader::ReadResult read = reader.ReadSome(fds[0], script.read_max);
    if (read.what == FrameReader::Read::kError) Violated("a read failed on a socketpair");
    while (true) {
      absl::Status why;
      const bool refuse = !refused_last && data_headers < 32 && (script.refusals >> data_headers) & 1;
      FrameReader::Parsed parsed = reader.Parse(
          [&] {
            refused_last = refuse;
            if (!refuse) ++data_headers;
            return !refuse;
          },
          &why);
      if (parsed == FrameReader::Parsed::kNeedMore) break;
      if (parsed == FrameReader::Parsed::kRefused) {
        // The queue drained: parse again, after another read if the script says so.
        if ((script.buffers >> 7) & 1) {
          write_some();
          FrameReader::ReadResult more = reader.ReadSome(fds[0], script.read_max);
          if (more.what == FrameReader::Read::kError) Violated("a read failed on a socketpair");
        }
        continue;
      }
      if (parsed == FrameReader::Parsed::kBad) {
        if (!script.bad_tail || next != script.frames.size()) Violated("a good header was called bad");
        bad = true;
        break;
      }
      refused_last = false;
      if (next == script.frames.size()) Violated("a frame that was never sent");
      const Frame& want = script.frames[next++];
      const FrameHeader& got = reader.header();
      if (got.kind != want.header.kind || got.fingerprint != want.header.fingerprint ||
          got.length != want.header.length) {
        Violated("a frame's header differs");
      }
      if (*reader.payload() != want.payload) Violated("a frame's payload differs");
      largest = std::max(largest, got.length);
      if (reader.payload()->capacity() > 2 * largest + FrameReader::kBufferSize) {
        Violated("a payload buffer far bigger than any frame");
      }
      HandOver(&reader, (script.buffers >> (2 * (handed++ % 4))) & 3);
    }
    if (read.what == FrameReader::Read::kEnd) break;
  }
  if (!bad && next != script.frames.size()) Violated("frames were lost");
  if (script.bad_tail && !bad) Violated("a bad header was not noticed");
  close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
}

// Script bytes for Seeds: read limit, chunk, refusals, buffers, then frames.
std::string Input(uint8_t read_max, uint8_t chunk, uint32_t refusals, uint8_t buffers,
                  const std::vector<std::vector<uint8_t>>& frames) {
  std::string input = {static_cast<char>(read_max), static_cast<char>(chunk)};
  input.append(reinterpret_cast<const char*>(&refusals), 4);
  input.push_back(static_cast<char>(buffers));
  for (const auto& f : frames) input.append(f.begin(), f.end());
  return input;
}

}  // namespace
}  // namespace constellation::net

namespace constellation::fuzz {

std::vector<Seed> Seeds() {
  using constellation::net::Input;
  // Frames: {kind (high bits scale the length: 0x10 x16, 0x20 x256), length lo, length hi, fill}.
  const std::vector<uint8_t> big = {0x20, 0x00, 0x01, 'b'};     // data, 64 KiB
  const std::vector<uint8_t> bigger = {0x20, 0x00, 0x04, 'B'};  // data, 256 KiB
  const std::vector<uint8_t> small = {0x00, 0x05, 0x00, 's'};   // data, 5 bytes
  const std::vector<uint8_t> open = {0x02, 0x0c, 0x00, 'o'};    // open, 12 bytes
  const std::vector<uint8_t> close = {0x03, 0x00, 0x00, 0};     // close
  const std::vector<uint8_t> bad = {0x06, 0, 0, 0};
  return {
      {"equal-bigs", Input(0, 6, 0, 0, {big, big, big})},
      {"big-then-small-ones", Input(0, 5, 0, 0x55, {bigger, small, small, open, close, bigger, small})},
      {"refused-after-big", Input(0, 6, 0b1010, 0xe4, {bigger, big, small, big})},
      {"refused-small-after-big", Input(0, 6, 0b10, 0x80, {bigger, small, big, small, open, bigger})},
      {"short-reads", Input(4, 1, 0, 0x1b, {big, small, big})},
      {"bad-after-big", Input(0, 6, 0, 0, {big, small, bad})},
  };
}

}  // namespace constellation::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constellation::net::Run(constellation::net::Parse(data, size));
  return 0;
}
