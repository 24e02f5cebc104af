// Property-style tests of the codec: random values round-trip; random
// truncations and byte flips of valid encodings, and random garbage, decode
// to a value or an error but never crash, hang or over-allocate (run under
// --config=asan too). Seeded, so every run checks the same cases.
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "gtest/gtest.h"
#include "lib/core/codec.h"
#include "proto/process.pb.h"

namespace constellation {
namespace {

struct Record {
  uint32_t id = 0;
  std::string name;
  std::vector<double> samples;
  std::optional<std::map<std::string, int64_t>> tags;
  std::variant<bool, std::string, std::vector<uint8_t>> payload;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, name, samples, tags, payload);
  }
  bool operator==(const Record&) const = default;
};

using Value = std::tuple<int8_t, uint64_t, double, std::string, std::vector<Record>,
                         std::map<int32_t, std::vector<std::string>>, std::optional<Record>, std::pair<bool, float>>;

class Random {
 public:
  explicit Random(uint64_t seed) : gen_(seed) {}
  uint64_t Below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(gen_); }
  bool Coin() { return Below(2) == 0; }
  std::string String() {
    std::string s(Below(20), '\0');
    for (char& c : s) c = static_cast<char>(Below(256));
    return s;
  }
  Record MakeRecord() {
    Record r;
    r.id = static_cast<uint32_t>(gen_());
    r.name = String();
    for (uint64_t i = Below(5); i > 0; --i) r.samples.push_back(static_cast<double>(gen_()) / 7);
    if (Coin()) {
      r.tags.emplace();
      for (uint64_t i = Below(4); i > 0; --i) (*r.tags)[String()] = static_cast<int64_t>(gen_());
    }
    switch (Below(3)) {
      case 0:
        r.payload = Coin();
        break;
      case 1:
        r.payload = String();
        break;
      default: {
        std::string s = String();
        r.payload = std::vector<uint8_t>(s.begin(), s.end());
      }
    }
    return r;
  }
  Value MakeValue() {
    Value v;
    std::get<0>(v) = static_cast<int8_t>(gen_());
    std::get<1>(v) = gen_();
    std::get<2>(v) = static_cast<double>(gen_()) / 3;
    std::get<3>(v) = String();
    for (uint64_t i = Below(4); i > 0; --i) std::get<4>(v).push_back(MakeRecord());
    for (uint64_t i = Below(4); i > 0; --i) std::get<5>(v)[static_cast<int32_t>(gen_())] = {String(), String()};
    if (Coin()) std::get<6>(v) = MakeRecord();
    std::get<7>(v) = {Coin(), static_cast<float>(Below(1000)) / 8};
    return v;
  }

 private:
  std::mt19937_64 gen_;
};

TEST(CodecPropertyTest, RandomValuesRoundTrip) {
  Random random(1);
  for (int i = 0; i < 2000; ++i) {
    Value value = random.MakeValue();
    auto decoded = decode<Value>(encode(value));
    ASSERT_TRUE(decoded.ok()) << "case " << i << ": " << decoded.status();
    ASSERT_TRUE(*decoded == value) << "case " << i;
  }
}

TEST(CodecPropertyTest, EveryTruncationFails) {
  Random random(2);
  for (int i = 0; i < 200; ++i) {
    std::string bytes = encode(random.MakeValue());
    for (size_t n = 0; n < bytes.size(); ++n) {
      ASSERT_FALSE(decode<Value>(absl::string_view(bytes).substr(0, n)).ok()) << "case " << i << " at " << n;
    }
  }
}

TEST(CodecPropertyTest, ByteFlipsNeverCrash) {
  Random random(3);
  int decoded_ok = 0, failed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = encode(random.MakeValue());
    for (uint64_t flips = 1 + random.Below(4); flips > 0; --flips) {
      bytes[random.Below(bytes.size())] ^= static_cast<char>(1 + random.Below(255));
    }
    // Either outcome is fine; what matters is that decoding returns.
    (decode<Value>(bytes).ok() ? decoded_ok : failed)++;
  }
  EXPECT_GT(failed, 0);
  EXPECT_EQ(decoded_ok + failed, 20000);
}

TEST(CodecPropertyTest, GarbageNeverCrashes) {
  Random random(4);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(random.Below(64), '\0');
    for (char& c : bytes) c = static_cast<char>(random.Below(256));
    (void)decode<Value>(bytes);
    (void)decode<std::vector<std::string>>(bytes);
    (void)decode<std::map<std::string, std::vector<int>>>(bytes);
    (void)decode<pb::ProcessEvent>(bytes);
    (void)decode<std::vector<std::optional<std::tuple<>>>>(bytes);
  }
}

TEST(CodecPropertyTest, LengthsNeverAllocateBeyondInput) {
  // Every length prefix is set to the largest values a varint can hold; with
  // the rest of the input tiny, decoding must fail without trying to allocate.
  for (uint64_t claimed : {uint64_t{1} << 33, uint64_t{1} << 40, ~uint64_t{0} >> 1, ~uint64_t{0}}) {
    std::string bytes;
    Encoder(&bytes).WriteVarint(claimed);
    bytes += std::string(16, '\x01');
    EXPECT_FALSE(decode<std::string>(bytes).ok());
    EXPECT_FALSE(decode<std::vector<uint64_t>>(bytes).ok());
    EXPECT_FALSE(decode<std::vector<Record>>(bytes).ok());
    EXPECT_FALSE(decode<std::vector<std::tuple<>>>(bytes).ok());
  }
}

}  // namespace
}  // namespace constellation
