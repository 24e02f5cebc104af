#include "lib/core/codec.h"

#include <deque>
#include <list>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gtest/gtest.h"
#include "lib/core/pid.h"
#include "lib/core/resources.h"
#include "proto/process.pb.h"

namespace constellation {
namespace {

template <class T>
T RoundTrip(const T& value) {
  std::string bytes = encode(value);
  auto decoded = decode<T>(bytes);
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  return decoded.ok() ? *std::move(decoded) : T{};
}

struct WorkerArg {  // the seeds' example
  size_t index = 0;
  std::string greeting;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(index, greeting);
  }
  bool operator==(const WorkerArg&) const = default;
};

class PrivateFields {  // private serialize with cereal's friend
 public:
  PrivateFields() = default;
  PrivateFields(int a, std::vector<std::string> b) : a_(a), b_(std::move(b)) {}
  bool operator==(const PrivateFields&) const = default;

 private:
  friend class cereal::access;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(a_), cereal::make_nvp("b", b_));
  }
  int a_ = 0;
  std::vector<std::string> b_;
};

struct SplitSaveLoad {  // save/load members: stores a derived value
  int value = 0;
  template <class Archive>
  void save(Archive& ar) const {
    ar(value * 2);
  }
  template <class Archive>
  void load(Archive& ar) {
    int doubled = 0;
    ar(doubled);
    value = doubled / 2;
  }
};

struct FreeSerialize {
  double x = 0;
  std::optional<int> y;
};
template <class Archive>
void serialize(Archive& ar, FreeSerialize& f) {
  ar(f.x, f.y);
}

struct Base {
  int base = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(base);
  }
};
struct Derived : Base {
  std::string name;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::base_class<Base>(this), name);
  }
};

struct Empty {
  template <class Archive>
  void serialize(Archive&) {}
  bool operator==(const Empty&) const = default;
};

enum class Color : uint8_t { kRed = 1, kGreen = 2 };

TEST(CodecTest, Arithmetic) {
  EXPECT_EQ(RoundTrip(0), 0);
  EXPECT_EQ(RoundTrip(-123456789), -123456789);
  EXPECT_EQ(RoundTrip(uint64_t{0xfedcba9876543210}), uint64_t{0xfedcba9876543210});
  EXPECT_EQ(RoundTrip(int8_t{-128}), int8_t{-128});
  EXPECT_EQ(RoundTrip(3.25), 3.25);
  EXPECT_EQ(RoundTrip(-1.5f), -1.5f);
  EXPECT_EQ(RoundTrip(true), true);
  EXPECT_EQ(RoundTrip(false), false);
  EXPECT_EQ(RoundTrip('x'), 'x');
  EXPECT_EQ(RoundTrip(Color::kGreen), Color::kGreen);
  EXPECT_EQ(encode(int32_t{1}).size(), 4u);
}

TEST(CodecTest, Strings) {
  EXPECT_EQ(RoundTrip(std::string()), "");
  EXPECT_EQ(RoundTrip(std::string("hello")), "hello");
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(RoundTrip(all_bytes), all_bytes);
  std::string big(1 << 20, 'z');
  EXPECT_EQ(RoundTrip(big), big);
}

TEST(CodecTest, Containers) {
  EXPECT_EQ(RoundTrip(std::vector<int>{1, 2, 3}), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(RoundTrip(std::vector<bool>{true, false, true}), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(RoundTrip(std::vector<std::string>{"a", "", "ccc"}), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(RoundTrip(std::deque<int>{4, 5}), (std::deque<int>{4, 5}));
  EXPECT_EQ(RoundTrip(std::list<double>{1.5}), (std::list<double>{1.5}));
  std::map<std::string, std::vector<int>> m{{"x", {1}}, {"y", {}}};
  EXPECT_EQ(RoundTrip(m), m);
  std::multimap<int, int> mm{{1, 1}, {1, 2}};
  EXPECT_EQ(RoundTrip(mm), mm);
  EXPECT_EQ(RoundTrip(std::set<int>{3, 1, 2}), (std::set<int>{1, 2, 3}));
  EXPECT_EQ(RoundTrip(std::multiset<int>{1, 1}), (std::multiset<int>{1, 1}));
  std::unordered_map<int, std::string> um{{1, "one"}, {2, "two"}};
  EXPECT_EQ(RoundTrip(um), um);
  EXPECT_EQ(RoundTrip(std::unordered_set<std::string>{"p", "q"}), (std::unordered_set<std::string>{"p", "q"}));
  EXPECT_EQ(RoundTrip(std::array<int, 3>{7, 8, 9}), (std::array<int, 3>{7, 8, 9}));
  EXPECT_EQ(RoundTrip(std::vector<std::vector<int>>{{1}, {}, {2, 3}}),
            (std::vector<std::vector<int>>{{1}, {}, {2, 3}}));
}

TEST(CodecTest, OptionalPairTupleVariant) {
  EXPECT_EQ(RoundTrip(std::optional<int>()), std::nullopt);
  EXPECT_EQ(RoundTrip(std::optional<int>(5)), 5);
  EXPECT_EQ(RoundTrip(std::make_pair(1, std::string("a"))), std::make_pair(1, std::string("a")));
  auto t = std::make_tuple(1, 2.5, std::string("x"), std::vector<int>{1});
  EXPECT_EQ(RoundTrip(t), t);
  EXPECT_EQ(RoundTrip(std::tuple<>()), std::tuple<>());
  using V = std::variant<int, std::string, std::vector<int>>;
  EXPECT_EQ(RoundTrip(V(std::string("s"))), V(std::string("s")));
  EXPECT_EQ(RoundTrip(V(std::vector<int>{2})), V(std::vector<int>{2}));
}

TEST(CodecTest, UserTypes) {
  WorkerArg arg{3, "hello worker 3!"};
  EXPECT_EQ(RoundTrip(arg), arg);
  PrivateFields p(7, {"a", "b"});
  EXPECT_EQ(RoundTrip(p), p);
  EXPECT_EQ(RoundTrip(SplitSaveLoad{21}).value, 21);
  FreeSerialize f{2.5, 9};
  FreeSerialize g = RoundTrip(f);
  EXPECT_EQ(g.x, 2.5);
  EXPECT_EQ(g.y, 9);
  Derived d;
  d.base = 4;
  d.name = "derived";
  Derived e = RoundTrip(d);
  EXPECT_EQ(e.base, 4);
  EXPECT_EQ(e.name, "derived");
  EXPECT_EQ(RoundTrip(std::vector<WorkerArg>{{1, "a"}, {2, "b"}}), (std::vector<WorkerArg>{{1, "a"}, {2, "b"}}));
  EXPECT_EQ(RoundTrip(std::vector<Empty>(1000)), std::vector<Empty>(1000));
}

TEST(CodecTest, CoreTypes) {
  Pid pid = Pid::FromIpv4(0x7f000001, 80, 9);
  EXPECT_EQ(RoundTrip(pid), pid);
  Resources r{3 * kGiB, 0.25};
  EXPECT_EQ(RoundTrip(r), r);
}

TEST(CodecTest, Protobuf) {
  pb::ProcessEvent event;
  event.mutable_pid()->set_port(42);
  event.mutable_output()->set_fd(2);
  event.mutable_output()->set_data(std::string("\0\xff bytes", 8));
  pb::ProcessEvent back = RoundTrip(event);
  EXPECT_EQ(back.SerializeAsString(), event.SerializeAsString());
  EXPECT_EQ(back.output().data(), std::string("\0\xff bytes", 8));
}

TEST(CodecTest, EncodeAppends) {
  std::string out = "prefix";
  encode(uint8_t{7}, &out);
  EXPECT_EQ(out, std::string("prefix\x07"));
}

TEST(CodecErrorTest, Truncated) {
  std::string bytes = encode(std::vector<std::string>{"hello", "world"});
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto decoded = decode<std::vector<std::string>>(bytes.substr(0, n));
    EXPECT_FALSE(decoded.ok()) << "prefix of " << n << " bytes decoded";
  }
}

TEST(CodecErrorTest, TrailingBytes) {
  auto decoded = decode<int32_t>(encode(int64_t{1}));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("left over"), std::string::npos) << decoded.status();
}

TEST(CodecErrorTest, HugeLengthAllocatesNothing) {
  // A varint claiming 10 GiB, then a few bytes: fails before any allocation.
  std::string bytes;
  Encoder(&bytes).WriteVarint(10 * kGiB);
  bytes += "abc";
  auto as_string = decode<std::string>(bytes);
  ASSERT_FALSE(as_string.ok());
  EXPECT_NE(as_string.status().message().find("10737418240"), std::string::npos) << as_string.status();
  EXPECT_NE(as_string.status().message().find("std::"), std::string::npos) << "names the type";
  EXPECT_FALSE(decode<std::vector<int64_t>>(bytes).ok());
  EXPECT_FALSE(decode<std::vector<std::string>>(bytes).ok());
  EXPECT_FALSE((decode<std::map<int, int>>(bytes).ok()));
  EXPECT_FALSE(decode<std::vector<Empty>>(bytes).ok());
  EXPECT_FALSE(decode<pb::ProcessEvent>(bytes).ok());
}

TEST(CodecErrorTest, EmptyElementsAreBoundedAcrossTheWholeDecode) {
  // Each inner vector claims the whole allowance, which its own check allows;
  // together they must not. (When the cap was 2^20 per container, 3 KB of
  // such claims decoded to 715 MiB.)
  std::string bytes;
  Encoder encoder(&bytes);
  encoder.WriteVarint(64);
  for (int i = 0; i < 64; ++i) encoder.WriteVarint(Decoder::kMaxEmptyElements);
  auto decoded = decode<std::vector<std::vector<Empty>>>(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("encode to no bytes"), std::string::npos) << decoded.status();

  // A map of lists of empty tuples, the same attack through other containers.
  bytes.clear();
  encoder.WriteVarint(64);
  for (int i = 0; i < 64; ++i) {
    encoder.Encode(i);
    encoder.WriteVarint(Decoder::kMaxEmptyElements / 2);
  }
  EXPECT_FALSE((decode<std::map<int, std::list<std::tuple<>>>>(bytes).ok()));
}

TEST(CodecTest, EmptyElementsUpToTheAllowanceRoundTrip) {
  // The allowance is shared, not per container, yet a value the codec wrote
  // still decodes when its empty elements add up to the allowance.
  const size_t n = Decoder::kMaxEmptyElements;
  std::vector<std::vector<Empty>> split(4, std::vector<Empty>(n / 4));
  EXPECT_EQ(RoundTrip(split), split);
  split[0].emplace_back();
  EXPECT_FALSE(decode<std::vector<std::vector<Empty>>>(encode(split)).ok());
  // Elements that consume bytes never draw on it: 2^20 + 1 user structs decode.
  std::vector<WorkerArg> many(n + 1);
  EXPECT_EQ(RoundTrip(many).size(), n + 1);
}

TEST(CodecErrorTest, BadValues) {
  EXPECT_FALSE(decode<bool>(std::string("\x02", 1)).ok());
  EXPECT_FALSE(decode<std::optional<int>>(std::string("\x07\0\0\0\0", 5)).ok());
  using V = std::variant<int, std::string>;
  EXPECT_FALSE(decode<V>(std::string("\x05\0\0\0\0", 5)).ok());
  EXPECT_FALSE(decode<uint64_t>(std::string(11, '\xff')).ok());
  std::string overlong_varint(11, '\x80');
  EXPECT_FALSE(decode<std::string>(overlong_varint).ok());
  EXPECT_FALSE(decode<pb::ProcessEvent>(std::string("\x03\xff\xff\xff", 4)).ok());
}

TEST(TypeNameTest, NamesAndFingerprints) {
  EXPECT_EQ(type_name<int>(), "int");
  EXPECT_NE(type_name<std::string>().find("string"), std::string_view::npos);
  EXPECT_NE(type_fingerprint<int>(), type_fingerprint<unsigned>());
  EXPECT_NE(type_fingerprint<std::vector<int>>(), type_fingerprint<std::vector<long>>());
  EXPECT_EQ(type_fingerprint<WorkerArg>(), type_fingerprint<WorkerArg>());
  static_assert(type_fingerprint<int>() != 0);
}

}  // namespace
}  // namespace constellation
