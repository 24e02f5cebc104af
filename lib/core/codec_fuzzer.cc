// libFuzzer target for the codec (lib/core/codec.h): decodes the input as one
// of several nested types, chosen by its first byte. Every decode must end in a
// value or an error, never a crash, a leak, undefined behaviour or an
// allocation out of proportion to the input (tools/fuzz.sh sets the limits);
// a value that decodes must encode to bytes that decode to the same value.
// Run with tools/fuzz.sh codec_fuzzer SECONDS; see docs/fuzzing.md.

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "absl/strings/str_cat.h"
#include "lib/core/codec.h"
#include "proto/process.pb.h"
#include "tools/fuzz/seeds.h"

namespace constellation {
namespace {

struct Empty {
  template <class Archive>
  void serialize(Archive&) {}
};

// A cereal-style struct with a bit of everything.
struct Record {
  uint32_t id = 0;
  std::string name;
  std::vector<double> samples;
  std::optional<std::map<std::string, int64_t>> tags;
  std::variant<bool, std::string, std::vector<uint8_t>> payload;
  std::vector<Empty> marks;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, name, samples, tags, payload, marks);
  }
};

// A recursive user type: nesting depth comes from the input.
struct Tree {
  int16_t value = 0;
  std::vector<Tree> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, children);
  }
};

using VectorOfVectors = std::vector<std::vector<int32_t>>;
using StringsToVectors = std::map<std::string, std::vector<uint16_t>>;
using OptionalTupleVariant =
    std::tuple<std::optional<std::string>, std::variant<int64_t, std::string, std::vector<bool>>,
               std::pair<bool, float>, std::deque<std::set<int8_t>>>;
using Records = std::vector<Record>;
using Empties = std::vector<std::vector<Empty>>;
using EmptyTuples = std::map<int8_t, std::list<std::tuple<>>>;
using Messages = std::vector<std::optional<pb::ProcessEvent>>;

// The elements that encode to no bytes in the types made of them: a decode
// may create at most kMaxEmptyElements of them, whatever the input claims
// (checked here too, so that the replay test catches a regression without
// libFuzzer's allocation limit).
template <class T>
size_t EmptyElements(const T&) {
  return 0;
}
size_t EmptyElements(const Empties& value) {
  size_t n = 0;
  for (const auto& inner : value) n += inner.size();
  return n;
}
size_t EmptyElements(const EmptyTuples& value) {
  size_t n = 0;
  for (const auto& [key, list] : value) n += list.size();
  return n;
}

template <class T>
void Check(absl::string_view bytes) {
  absl::StatusOr<T> value = decode<T>(bytes);
  if (!value.ok()) return;
  if (EmptyElements(*value) > Decoder::kMaxEmptyElements) fuzz::Violated("more empty elements than allowed");
  // Not byte-for-byte: the input may hold a longer varint than needed, or a
  // map key twice. But what the codec writes it must read back as it was.
  std::string once = encode(*value);
  absl::StatusOr<T> again = decode<T>(once);
  if (!again.ok()) fuzz::Violated(absl::StrCat("cannot decode its own encoding: ", again.status().ToString()).c_str());
  if (encode(*again) != once) fuzz::Violated("decode(encode(v)) differs from v");
}

using Checker = void (*)(absl::string_view);
constexpr Checker kCheckers[] = {
    Check<VectorOfVectors>,
    Check<StringsToVectors>,
    Check<OptionalTupleVariant>,
    Check<Records>,
    Check<Empties>,
    Check<EmptyTuples>,
    Check<Tree>,
    Check<Messages>,
};
constexpr size_t kTypes = sizeof(kCheckers) / sizeof(kCheckers[0]);

// One seed: the type's index, then the encoding of `value`.
template <class T>
fuzz::Seed SeedOf(std::string name, uint8_t type, const T& value) {
  return {std::move(name), std::string(1, static_cast<char>(type)) + encode(value)};
}

}  // namespace

std::vector<fuzz::Seed> fuzz::Seeds() {
  Record record{7,
                "worker",
                {1.5, -2.25},
                std::map<std::string, int64_t>{{"a", 1}, {"b", -2}},
                std::vector<uint8_t>{1, 2, 3},
                std::vector<Empty>(3)};
  Tree tree{1, {Tree{2, {}}, Tree{3, {Tree{4, {}}}}}};
  pb::ProcessEvent event;
  event.mutable_exit()->set_code(3);
  event.mutable_exit()->set_error("gone");
  return {
      SeedOf("vector-of-vectors", 0, VectorOfVectors{{}, {1, 2, 3}, {-1}}),
      SeedOf("strings-to-vectors", 1, StringsToVectors{{"", {}}, {"key", {1, 65535}}}),
      SeedOf("optional-tuple-variant", 2,
             OptionalTupleVariant{"text", std::vector<bool>{true, false}, {true, 0.5f}, {{1, -2}, {}}}),
      SeedOf("optional-tuple-variant-empty", 2, OptionalTupleVariant{std::nullopt, int64_t{-9}, {false, 0}, {}}),
      SeedOf("records", 3, Records{record, Record{}}),
      SeedOf("empties", 4, Empties{std::vector<Empty>(5), {}, std::vector<Empty>(1)}),
      SeedOf("empty-tuples", 5, EmptyTuples{{1, std::list<std::tuple<>>(4)}, {-1, {}}}),
      SeedOf("tree", 6, tree),
      SeedOf("messages", 7, Messages{event, std::nullopt}),
  };
}

}  // namespace constellation

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // a bad message is expected, not news
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  constellation::kCheckers[data[0] % constellation::kTypes](
      absl::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  return 0;
}
